import assert from "node:assert/strict";
import { afterEach, test } from "node:test";

import { GATEKEEPER_HINTS, gatekeeperHint } from "../../static/js/lib/gatekeeper-hints.js";
import {
  ApiError, csrfToken, fetchHealth, gatekeeperRefusal, portalClockOffset, postToGatekeeper, requestGrant,
} from "../../static/js/lib/http.js";

const realFetch = globalThis.fetch;
afterEach(() => { globalThis.fetch = realFetch; });

// Answers every fetch with `answer(url, options)` and records the calls.
function stubFetch(answer) {
  const calls = [];
  globalThis.fetch = async (url, options = {}) => {
    calls.push({ url, options });
    return answer(url, options);
  };
  return calls;
}
const json = (body, status = 200, headers = {}) => new Response(JSON.stringify(body), {
  status, headers: { "Content-Type": "application/json", ...headers },
});
const unreachable = () => { throw new TypeError("Failed to fetch"); };

test("csrfToken prefers the page's own token, then Django's cookie", () => {
  assert.equal(csrfToken({ dataset: { csrfToken: "page" } }, "csrftoken=cookie"), "page");
  assert.equal(csrfToken({ dataset: {} }, "sessionid=s; csrftoken=a%2Bb; other=1"), "a+b");
  assert.equal(csrfToken({ dataset: {} }, "xcsrftoken=no"), "");
});

test("requestGrant posts with the CSRF token and returns the portal's answer", async () => {
  const calls = stubFetch(() => json({ grant: "g", gatekeeper_url: "https://gk" }));
  assert.deepEqual(await requestGrant("/api/v1/tickets/1/grant", "tok"), { grant: "g", gatekeeper_url: "https://gk" });
  assert.equal(calls[0].url, "/api/v1/tickets/1/grant");
  assert.equal(calls[0].options.method, "POST");
  assert.equal(calls[0].options.credentials, "same-origin");
  assert.equal(calls[0].options.headers["X-CSRFToken"], "tok");
});

test("requestGrant says why the portal refused, in DRF's shape and in ours", async () => {
  stubFetch(() => json({ detail: "Authentication credentials were not provided.", code: "not_authenticated" }, 403));
  await assert.rejects(requestGrant("/g", "t"), (error) => error instanceof ApiError && error.source === "portal"
    && error.status === 403 && error.code === "not_authenticated"
    && error.message === "The portal did not give an access grant: Authentication credentials were not provided.");
  stubFetch(() => json({ error: "not_found", message: "No such ticket." }, 404));
  await assert.rejects(requestGrant("/g", "t"), { code: "not_found", message: "The portal did not give an access grant: No such ticket." });
  stubFetch(() => new Response("<html>", { status: 502 }));
  await assert.rejects(requestGrant("/g", "t"), { status: 502, code: null, message: "The portal did not give an access grant: HTTP 502" });
});

test("requestGrant refuses an answer without a grant, and says when the portal is unreachable", async () => {
  stubFetch(() => json({ grant: 7 }));
  await assert.rejects(requestGrant("/g", "t"), { message: "The portal's grant answer is malformed." });
  stubFetch(unreachable);
  await assert.rejects(requestGrant("/g", "t"), { source: "portal", message: "Could not reach the portal to get an access grant." });
});

test("postToGatekeeper sends the grant as the only credential, to the path under the URL", async () => {
  const calls = stubFetch(() => json({ results: [] }));
  assert.deepEqual(await postToGatekeeper("https://gk.example//", "/v1/sign", "G", { ops: [] }), { results: [] });
  const { url, options } = calls[0];
  assert.equal(url, "https://gk.example/v1/sign");
  assert.equal(options.credentials, "omit");
  assert.equal(options.referrerPolicy, "no-referrer");
  assert.equal(options.headers.Authorization, "Bearer G");
  assert.equal(options.body, '{"ops":[]}');
});

test("a gatekeeper's refusal keeps its code and message, with a hint and the request id", async () => {
  stubFetch(() => json({ error: "address_denied", message: "address not allowed" }, 403, { "X-Request-Id": "r-1" }));
  await assert.rejects(postToGatekeeper("https://gk", "/v1/sign", "G", {}), (error) => {
    assert.equal(error.message, "The gatekeeper refused: address not allowed (address_denied)");
    assert.equal(error.hint, `${GATEKEEPER_HINTS.address_denied} Gatekeeper request id: r-1.`);
    assert.deepEqual([error.source, error.status, error.code], ["gatekeeper", 403, "address_denied"]);
    return true;
  });
});

test("a refusal without a JSON body or a known code still says something true", () => {
  const bare = gatekeeperRefusal(500, null);
  assert.equal(bare.message, "The gatekeeper refused: no reason given (http_500)");
  assert.equal(bare.hint, null);
  // A code that names a property of every object is not a hint.
  assert.equal(gatekeeperRefusal(400, { error: "constructor" }).hint, null);
  assert.equal(gatekeeperRefusal(401, { error: "expired" }, "x".repeat(300)).hint,
    `${GATEKEEPER_HINTS.expired} Gatekeeper request id: ${"x".repeat(100)}.`);
  assert.equal(gatekeeperHint("toString"), null);
  assert.equal(gatekeeperHint(undefined), null);
});

test("postToGatekeeper passes an abort through and names the origin it could not reach", async () => {
  stubFetch(() => { throw new DOMException("aborted", "AbortError"); });
  await assert.rejects(postToGatekeeper("https://gk", "/v1/sign", "G", {}), { name: "AbortError" });
  stubFetch(unreachable);
  await assert.rejects(postToGatekeeper("https://gk.example:8443/base", "/v1/sign", "G", {}), {
    message: "Could not reach the customer's gatekeeper at https://gk.example:8443.",
    hint: "It may be down, or it may not allow this portal's origin (CORS).",
  });
});

test("fetchHealth measures the gatekeeper's clock at the request's midpoint", async () => {
  const calls = stubFetch(() => json({ protocol: 1, time: Date.now() / 1000 + 100 }));
  const { body, elapsedMs, offsetMs } = await fetchHealth("https://gk/", { timeoutMs: 10_000 });
  assert.equal(calls[0].url, "https://gk/v1/health");
  assert.equal(calls[0].options.credentials, "omit");
  assert.equal(body.protocol, 1);
  assert.ok(elapsedMs >= 0);
  assert.ok(Math.abs(offsetMs - 100_500) < 1000, offsetMs); // +500 ms: the guess for the cut second
  stubFetch(() => json({ protocol: 1 }));
  assert.equal((await fetchHealth("https://gk", { timeoutMs: 1 })).offsetMs, null);
});

test("fetchHealth's failures say what to check", async () => {
  globalThis.location = { origin: "https://portal.example" };
  stubFetch(() => json({}, 404));
  await assert.rejects(fetchHealth("https://gk", { timeoutMs: 10_000 }), {
    message: "https://gk/v1/health answered HTTP 404.", status: 404,
    hint: "Check the gatekeeper URL in the settings above: its /v1/health should answer 200.",
  });
  stubFetch(() => json(["not", "a", "report"]));
  await assert.rejects(fetchHealth("https://gk", { timeoutMs: 10_000 }),
    { message: "https://gk/v1/health did not answer with a gatekeeper's health report." });
  stubFetch(unreachable);
  await assert.rejects(fetchHealth("https://gk", { timeoutMs: 10_000 }), {
    message: "Could not reach the gatekeeper at https://gk.",
    hint: "It is unreachable from your network, or it does not list this portal (https://portal.example) in its allowed_origins.",
  });
  const abort = () => { throw new DOMException("aborted", "AbortError"); };
  stubFetch(abort);
  await assert.rejects(fetchHealth("https://gk", { timeoutMs: 10_000 }), { name: "AbortError" });
  stubFetch(abort);
  await assert.rejects(fetchHealth("https://gk", { timeoutMs: 10_000, timedOut: () => true }), (error) =>
    error instanceof ApiError && error.message === "The gatekeeper at https://gk did not answer within 10 s.");
});

test("portalClockOffset reads the Date header, and gives null without one", async () => {
  const ahead = new Date(Date.now() + 60_000).toUTCString();
  stubFetch(() => new Response(null, { headers: { Date: ahead } }));
  const offset = await portalClockOffset("/settings/");
  assert.ok(Math.abs(offset - 60_000) < 1500, offset);
  stubFetch(() => new Response(null));
  assert.equal(await portalClockOffset("/settings/"), null);
  stubFetch(unreachable);
  assert.equal(await portalClockOffset("/settings/"), null);
});
