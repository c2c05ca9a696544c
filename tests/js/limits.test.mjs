import assert from "node:assert/strict";
import { test } from "node:test";

import { TooLargeError, readLimited } from "../../static/js/lib/http.js";
import { FETCH_LIMITS, downloadPlan, fileKind, manifestAllows } from "../../static/js/report/limits.js";

const MiB = 1024 * 1024;

// A response whose body arrives in `chunks`; counts what the reader pulled and whether it was cancelled.
function streamed(chunks, headers = {}) {
  const seen = { pulled: 0, cancelled: false };
  let i = 0;
  const body = new ReadableStream({
    pull(controller) {
      if (i === chunks.length) return controller.close();
      seen.pulled += chunks[i].byteLength;
      controller.enqueue(chunks[i++]);
    },
    cancel() { seen.cancelled = true; },
  }, { highWaterMark: 0 });
  return { response: new Response(body, { headers }), seen };
}

test("the kind of a file decides whether the page opens it", () => {
  assert.equal(fileKind("report.json", "application/json"), "report");
  assert.equal(fileKind("a.png", "image/png"), "image");
  assert.equal(fileKind("a.log", "text/csv"), "text");
  assert.equal(fileKind("settings.json", "application/json"), null);
  assert.equal(manifestAllows("report", 2 * MiB), true);
  assert.equal(manifestAllows("report", 2 * MiB + 1), false);
  for (const size of [NaN, -1, 1.5, Infinity]) assert.equal(manifestAllows("text", size), false);
});

test("a file that storage lists larger than its manifest entry is refused before downloading", () => {
  assert.deepEqual(downloadPlan({ kind: "report", size: 122, storedSize: 8 * MiB }),
    { fetch: false, limit: 0, refusal: "oversized" });
  assert.deepEqual(downloadPlan({ kind: "report", size: 122, storedSize: 123 }),
    { fetch: false, limit: 0, refusal: "oversized" });
  // The same size, or smaller (the hash then tells): fetched, never more than the manifest's size.
  assert.deepEqual(downloadPlan({ kind: "report", size: 122, storedSize: 122 }), { fetch: true, limit: 122, refusal: null });
  assert.deepEqual(downloadPlan({ kind: "image", size: 500, storedSize: 10 }), { fetch: true, limit: 500, refusal: null });
  // Not listed (a truncated listing, or not there yet) or no usable size: the stream limit alone bounds it.
  for (const storedSize of [undefined, null, "8388608", -1, 1e300]) {
    assert.deepEqual(downloadPlan({ kind: "text", size: 40, storedSize }), { fetch: true, limit: 40, refusal: null });
  }
});

test("the per-kind cap and the file's type come before the listing", () => {
  assert.equal(downloadPlan({ kind: "text", size: FETCH_LIMITS.text + 1, storedSize: 5 }).refusal, "cap");
  assert.equal(downloadPlan({ kind: null, size: 5, storedSize: 5 }).refusal, "type");
  assert.equal(downloadPlan({ kind: "report", size: NaN, storedSize: 5 }).refusal, "cap");
});

test("readLimited returns a body within the limit, whole", async () => {
  const { response, seen } = streamed([new Uint8Array([1, 2]), new Uint8Array([3])]);
  assert.deepEqual(await readLimited(response, 3), new Uint8Array([1, 2, 3]));
  assert.equal(seen.cancelled, false);
  assert.deepEqual(await readLimited(new Response(null), 3), new Uint8Array(0));
});

test("readLimited stops a stream that runs past the limit, and cancels the rest", async () => {
  const chunk = new Uint8Array(64 * 1024);
  const { response, seen } = streamed(Array.from({ length: 128 }, () => chunk)); // 8 MiB on offer
  await assert.rejects(readLimited(response, 100 * 1024), (error) => {
    assert.ok(error instanceof TooLargeError);
    assert.equal(error.announced, false);
    assert.equal(error.limit, 100 * 1024);
    assert.equal(error.received, 128 * 1024); // the chunk that crossed it, and no more
    return true;
  });
  assert.equal(seen.cancelled, true);
  assert.ok(seen.pulled <= 3 * chunk.byteLength, `pulled ${seen.pulled} bytes`);
});

test("readLimited refuses an announced Content-Length over the limit without reading", async () => {
  const { response, seen } = streamed([new Uint8Array(10)], { "Content-Length": "8388608" });
  await assert.rejects(readLimited(response, 122), { name: "TooLargeError", announced: true, received: 8388608 });
  assert.equal(seen.pulled, 0);
  assert.equal(seen.cancelled, true);
});

test("a Content-Length that lies low does not get past the stream limit", async () => {
  const { response } = streamed([new Uint8Array(100), new Uint8Array(100)], { "Content-Length": "10" });
  await assert.rejects(readLimited(response, 150), { name: "TooLargeError", announced: false });
});
