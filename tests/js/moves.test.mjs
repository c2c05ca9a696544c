import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { afterEach, test } from "node:test";

import { Carrier, claimTabId, tabId } from "../../static/js/moves/carrier.js";

const realFetch = globalThis.fetch;
afterEach(() => { globalThis.fetch = realFetch; });

const json = (body, status = 200) => new Response(JSON.stringify(body), {
  status, headers: { "Content-Type": "application/json" },
});
const hex = (bytes) => createHash("sha256").update(bytes).digest("hex");
const CONTENT = new TextEncoder().encode("the report's own bytes");
const root = { dataset: { baseUrl: "/settings/moves/j1/", csrfToken: "tok", concurrency: "2",
  sourceGatekeeper: "https://gk-a.example", destinationGatekeeper: "https://gk-b.example",
  sourceStorage: "https://a.s3.example", destinationStorage: "https://b.s3.example" } };
const item = { id: 7, key: "tickets/t1/report.json", size: CONTENT.length, sha256: hex(CONTENT),
  content_type: "application/json" };

// The portal, both gatekeepers and both storages as the page meets them.
function stub({ source = CONTENT, putUrl = "https://b.s3.example/b" } = {}) {
  const calls = [];
  const stored = {};
  globalThis.fetch = async (url, options = {}) => {
    const body = typeof options.body === "string" ? JSON.parse(options.body) : options.body;
    calls.push({ url, method: options.method || "GET", body, headers: options.headers || {} });
    if (url.startsWith("/settings/moves/j1/carrier/objects/7/grants")) {
      return json(body.verify ? { get: "g-dest-get" } : { get: "g-src-get", put: "g-dest-put" });
    }
    if (url.endsWith("/copied")) return json({ state: body.sha256 === item.sha256 ? "copied" : "failed" });
    if (url.endsWith("/verified")) return json({ state: body.sha256 === item.sha256 ? "verified" : "failed" });
    if (url.endsWith("/failed")) return json({ state: "pending" });
    if (url === "https://gk-a.example/v1/sign") return json({ results: [{ url: "https://a.s3.example/obj" }] });
    if (url === "https://gk-b.example/v1/sign") {
      const op = body.ops[0];
      return json({ results: [op.op === "put" ? { url: putUrl, fields: { key: op.key } }
        : { url: "https://b.s3.example/obj" }] });
    }
    if (url === "https://a.s3.example/obj") return new Response(source);
    if (url === "https://b.s3.example/b") {
      stored.bytes = new Uint8Array(await options.body.get("file").arrayBuffer());
      return new Response(null, { status: 204 });
    }
    if (url === "https://b.s3.example/obj") return new Response(stored.bytes);
    throw new Error(`unexpected ${url}`);
  };
  return { calls, stored };
}

const portalCalls = (calls) => calls.filter((c) => c.url.startsWith("/"));

test("an object goes from the source's storage to the destination's, both digests to the portal, no bytes", async () => {
  const { calls, stored } = stub();
  const carrier = new Carrier(root);
  assert.equal((await carrier.copy(item)).state, "verified");
  assert.deepEqual(stored.bytes, CONTENT);
  assert.deepEqual(calls.map((c) => c.url), [
    "/settings/moves/j1/carrier/objects/7/grants", "https://gk-a.example/v1/sign", "https://a.s3.example/obj",
    "https://gk-b.example/v1/sign", "https://b.s3.example/b", "/settings/moves/j1/carrier/objects/7/copied",
    "/settings/moves/j1/carrier/objects/7/grants", "https://gk-b.example/v1/sign", "https://b.s3.example/obj",
    "/settings/moves/j1/carrier/objects/7/verified"]);
  assert.equal(calls[1].headers.Authorization, "Bearer g-src-get");
  assert.equal(calls[3].headers.Authorization, "Bearer g-dest-put");
  assert.deepEqual(calls[3].body.ops, [{ op: "put", key: item.key, size: item.size, content_type: item.content_type }]);
  const text = new TextDecoder().decode(CONTENT);
  for (const call of portalCalls(calls)) {
    assert.equal(call.headers["X-CSRFToken"], "tok");
    assert.ok(!JSON.stringify(call.body).includes(text), call.url);
    assert.deepEqual(Object.keys(call.body).sort().filter((k) => !["carrier", "sha256", "size", "verify"].includes(k)), []);
  }
  assert.equal(calls.at(-1).body.sha256, item.sha256);
});

test("a source that is not the manifest's is reported and nothing is written", async () => {
  const { calls } = stub({ source: new TextEncoder().encode("the report's OWN bytes") });
  assert.equal((await new Carrier(root).copy(item)).state, "failed");
  assert.ok(!calls.some((c) => c.url.startsWith("https://b.s3.example")));
  assert.ok(!calls.some((c) => c.url === "https://gk-b.example/v1/sign"));
});

test("an upload signed for storage the page does not name is refused, and the object reported failed", async () => {
  const { calls } = stub({ putUrl: "https://elsewhere.example/b" });
  await new Carrier(root).carry(item, "copy");
  const failed = calls.find((c) => c.url.endsWith("/failed"));
  assert.equal(failed.body.code, "wrong_storage");
  assert.equal(failed.body.permanent, false);
  assert.ok(!calls.some((c) => c.url.startsWith("https://elsewhere.example")));
});

test("a tab keeps its id across reloads; a new tab gets another", () => {
  const store = new Map();
  const session = { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v) };
  const first = tabId(session);
  assert.match(first, /^[0-9a-f]{32}$/);
  assert.equal(tabId(session), first);
  const other = new Map();
  assert.notEqual(tabId({ getItem: (k) => other.get(k) ?? null, setItem: (k, v) => other.set(k, v) }), first);
});

test("checking a copy the customer made reads the destination only and writes nothing", async () => {
  const { calls, stored } = stub();
  stored.bytes = CONTENT; // the customer's own copy
  const carrier = new Carrier({ dataset: { ...root.dataset, mode: "check" } });
  globalThis.fetch = ((inner) => async (url, options = {}) => {
    if (url.endsWith("/grants")) {
      calls.push({ url, body: JSON.parse(options.body), headers: options.headers });
      return json({ get_destination: "g-dest-get" });
    }
    return inner(url, options);
  })(globalThis.fetch);
  await carrier.carry(item, "copy");
  assert.equal(carrier.moved, 1);
  assert.deepEqual(calls.find((c) => c.url.endsWith("/grants")).body.check, true);
  assert.ok(!calls.some((c) => c.url.startsWith("https://a.s3.example") || c.url === "https://b.s3.example/b"));
  assert.equal(calls.find((c) => c.url.endsWith("/copied")).body.sha256, item.sha256);
});

test("checking a copy not made yet reports no failure (it is checked again)", async () => {
  const { calls } = stub();
  globalThis.fetch = ((inner) => async (url, options = {}) => {
    if (url.endsWith("/grants")) return json({ get_destination: "g-dest-get" });
    if (url === "https://b.s3.example/obj") {
      return new Response("<Error><Code>NoSuchKey</Code><Message>gone</Message></Error>", { status: 404 });
    }
    return inner(url, options);
  })(globalThis.fetch);
  const carrier = new Carrier({ dataset: { ...root.dataset, mode: "check" } });
  await carrier.carry(item, "copy");
  assert.equal(carrier.missing, 1);
  assert.ok(!calls.some((c) => c.url.endsWith("/failed") || c.url.endsWith("/copied")));
});

test("the erasure deletes exactly the keys the portal names, each on its own, and relays the answer", async () => {
  const calls = [];
  const answer = { request_id: "0123456789abcdef", results: [] };
  globalThis.fetch = async (url, options = {}) => {
    const body = JSON.parse(options.body);
    calls.push({ url, body });
    if (url.endsWith("/tickets/3/erase-grant")) return json({ grant: "g-del", prefix: "tickets/t1/",
      keys: ["tickets/t1/a.png", "tickets/t1/notes/n1.txt"] });
    if (url === "https://gk-a.example/v1/sign") return json(answer);
    if (url.endsWith("/tickets/3/erased")) return json({ state: "erased" });
    throw new Error(`unexpected ${url}`);
  };
  const carrier = new Carrier(root);
  await carrier.eraseSource({ id: 3, ticket: 12 });
  const signed = calls.find((c) => c.url === "https://gk-a.example/v1/sign");
  assert.deepEqual(signed.body, { ops: [{ op: "delete", key: "tickets/t1/a.png" },
    { op: "delete", key: "tickets/t1/notes/n1.txt" }] });  // never {op: delete, prefix}
  assert.deepEqual(calls.at(-1).body, { carrier: carrier.carrier, ...answer });
});

test("a tab renews its leases while it carries, and stops when done", async () => {
  const renewed = [];
  globalThis.fetch = async (url, options = {}) => {
    if (url.endsWith("/renew")) renewed.push(JSON.parse(options.body).ids);
    return json({ held: 1 });
  };
  const carrier = new Carrier({ dataset: { ...root.dataset, leaseSeconds: "15" } });
  assert.equal(carrier.renewMs, 5000);
  carrier.renewMs = 20;
  await carrier.holding([7, 9], () => new Promise((resolve) => setTimeout(resolve, 70)));
  const seen = renewed.length;
  assert.ok(seen >= 2, `renewed ${seen} times`);
  assert.deepEqual(renewed[0], [7, 9]);
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.equal(renewed.length, seen);  // none after the work ended
  await carrier.holding([], async () => {});
  assert.equal(renewed.length, seen);  // nothing carried: nothing renewed
});

test("a duplicated tab (its original's id, the original still open) takes a new id; a reload keeps its own", async () => {
  const session = () => {
    const store = new Map();
    return { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v), removeItem: (k) => store.delete(k),
      copy() { const s = session(); for (const [k, v] of store) s.setItem(k, v); return s; } };
  };
  const originalStore = session();
  const original = await claimTabId(originalStore, 50);
  const duplicate = await claimTabId(originalStore.copy(), 50); // sessionStorage copied, original alive
  assert.notEqual(duplicate.id, original.id);
  const reloadStore = originalStore.copy();
  original.close(); // the page reloaded: the old one is gone
  const reloaded = await claimTabId(reloadStore, 50);
  assert.equal(reloaded.id, original.id);
  duplicate.close();
  reloaded.close();
});
