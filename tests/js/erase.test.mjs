import assert from "node:assert/strict";
import { afterEach, test } from "node:test";

import { eraseTicket } from "../../static/js/erase/main.js";

const realFetch = globalThis.fetch;
afterEach(() => { globalThis.fetch = realFetch; });

const json = (body, status = 200) => new Response(JSON.stringify(body), {
  status, headers: { "Content-Type": "application/json" },
});
const root = { dataset: { grantUrl: "/grant", doneUrl: "/done", gatekeeperUrl: "https://gk.example/",
                          prefix: "tickets/ab/", csrfToken: "tok" } };

// The portal and the gatekeeper as the page meets them: `rounds` answers from the gatekeeper.
function stub(rounds, done = (n) => (n === rounds.length ? { state: "erased" } : { state: "partial", failed: [] })) {
  const calls = [];
  let n = 0;
  globalThis.fetch = async (url, options = {}) => {
    calls.push({ url, body: options.body && JSON.parse(options.body), headers: options.headers });
    if (url === "/grant") return json({ grant: `g${n + 1}` });
    if (url === "https://gk.example/v1/sign") return json(rounds[n++]);
    if (url === "/done") return json(done(n));
    throw new Error(`unexpected ${url}`);
  };
  return calls;
}

test("one round: grant with the confirmation, the erase op at the page's gatekeeper, the answer relayed", async () => {
  const answer = { request_id: "r1", results: [{ op: "delete", prefix: "tickets/ab/", truncated: false }] };
  const calls = stub([answer]);
  assert.deepEqual(await eraseTicket(root, "7", () => {}), { state: "erased" });
  assert.deepEqual(calls.map((c) => c.url), ["/grant", "https://gk.example/v1/sign", "/done"]);
  assert.deepEqual(calls[0].body, { confirm: "7" });
  assert.equal(calls[0].headers["X-CSRFToken"], "tok");
  assert.equal(calls[1].headers.Authorization, "Bearer g1");
  assert.deepEqual(calls[1].body, { ops: [{ op: "delete", prefix: "tickets/ab/" }] });
  assert.deepEqual(calls[2].body, answer);
});

test("a partial answer is followed by another round with a fresh grant", async () => {
  const calls = stub([{ request_id: "r1", results: [] }, { request_id: "r2", results: [] }]);
  await eraseTicket(root, "7", () => {});
  const grants = calls.filter((c) => c.url === "https://gk.example/v1/sign").map((c) => c.headers.Authorization);
  assert.deepEqual(grants, ["Bearer g1", "Bearer g2"]);
});

test("a portal refusal stops with its message", async () => {
  globalThis.fetch = async () => json({ error: "not_confirmed", message: "Type the ticket's number (7) to confirm." }, 400);
  await assert.rejects(eraseTicket(root, "8", () => {}), /to confirm/);
});

test("an erasure that never finishes gives up rather than looping", async () => {
  stub(Array.from({ length: 30 }, (_, i) => ({ request_id: `r${i}`, results: [] })), () => ({ state: "partial", failed: [] }));
  await assert.rejects(eraseTicket(root, "7", () => {}), /did not finish/);
});
