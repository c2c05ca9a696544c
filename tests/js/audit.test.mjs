import assert from "node:assert/strict";
import { afterEach, test } from "node:test";

import { installFakeDocument } from "./fake-dom.mjs";
import { COLUMNS, csvCell, toCsv } from "../../static/js/audit/csv.js";
import { AuditLog, MAX_CALLS_PER_LOAD } from "../../static/js/audit/search.js";
import { entryDate, readEntry, row, utcText } from "../../static/js/audit/table.js";

installFakeDocument();
const realFetch = globalThis.fetch;
afterEach(() => { globalThis.fetch = realFetch; });

const ENTRY = {
  ts: 1_795_000_000, request_id: "r1", outcome: "allow", op: "get", key: "tickets/1/report.json",
  client_ip: "203.0.113.9", country: "DE", sub: "user:7", name: "Bob", reason: "", status: 200,
  user_agent: "Mozilla/5.0", origin: "https://portal", jti: "j1", kid: "acme-1",
  approval: "apr-1", approvers: "alice,bob", idp_sub: "idp-bob", idp_iss: "https://idp.acme",
};

test("csvCell quotes what needs quoting and defuses formulas", () => {
  assert.equal(csvCell(null), "");
  assert.equal(csvCell(200), "200");
  assert.equal(csvCell("plain"), "plain");
  assert.equal(csvCell('say "hi", then'), '"say ""hi"", then"');
  assert.equal(csvCell(" padded"), '" padded"');
  for (const start of ["=", "+", "-", "@", "\t", "\r"]) {
    assert.ok(csvCell(`${start}1+1`).replace(/^"/, "").startsWith(`'${start}1+1`), JSON.stringify(start));
  }
  assert.equal(csvCell("=HYPERLINK(\"x\")"), '"\'=HYPERLINK(""x"")"');
  assert.equal(csvCell("-1"), "'-1");
});

test("toCsv writes a header and one CRLF line per entry, times in UTC", () => {
  const csv = toCsv([ENTRY, { ...ENTRY, ts: "soon", user_agent: "=cmd|' /C calc'!A0" }]);
  const lines = csv.split("\r\n");
  assert.equal(lines[0], COLUMNS.join(","));
  assert.equal(lines[1], "2026-11-18T11:06:40Z,r1,allow,get,tickets/1/report.json,203.0.113.9,DE,user:7,Bob,,200,Mozilla/5.0,https://portal,j1,acme-1,apr-1,\"alice,bob\",idp-bob,https://idp.acme");
  assert.equal(lines[2].split(",")[0], "");
  assert.match(lines[2], /,'=cmd\|' \/C calc'!A0,/);
  assert.equal(lines.length, 4);
  assert.equal(lines[3], "");
});

test("readEntry type-checks and cuts every field", () => {
  assert.equal(entryDate({ ts: "1" }), null);
  assert.equal(entryDate({ ts: 8.64e15 + 1 }), null); // beyond what a Date can hold
  assert.equal(utcText(null), "");
  const e = readEntry({ ...ENTRY, status: 200.5, key: "k".repeat(2000), op: { toString: () => "get" }, sub: 7 });
  assert.equal(e.status, "");
  assert.equal(e.key.length, 1100);
  assert.equal(e.op, "");
  assert.equal(e.sub, "7");
  assert.equal(readEntry(null).utc, "");
});

test("a row shows the entry as text, with the outcome's badge", () => {
  const tr = row({ ...ENTRY, outcome: "maybe", user_agent: "<script>alert(1)</script>" });
  assert.equal(tr.getAttribute("data-outcome"), "maybe");
  assert.equal(tr.findAll("script").length, 0);
  assert.match(tr.serialize(), /&lt;script>alert\(1\)&lt;\/script>/);
  assert.equal(tr.findAll("span")[0].getAttribute("class"), "outcome outcome-other");
  assert.equal(row(ENTRY).findAll("span")[0].getAttribute("class"), "outcome outcome-allow");
  assert.equal(row(ENTRY).findAll("time")[0].getAttribute("datetime"), "2026-11-18T11:06:40Z");
});

test("a row shows the IdP's subject of a request with an ID token, its issuer as the title; others a dash", () => {
  assert.match(row(ENTRY).serialize(), /title="https:\/\/idp.acme"[^>]*>idp-bob</);
  assert.doesNotMatch(row({ ...ENTRY, idp_sub: "", idp_iss: "" }).serialize(), /idp-bob/);
});

test("a vendor support read's row shows its approval id and approvers; others a dash", () => {
  assert.match(row(ENTRY).serialize(), /apr-1 \(alice,bob\)/);
  assert.doesNotMatch(row({ ...ENTRY, approval: "", approvers: "" }).serialize(), /\(alice/);
});

// A gatekeeper that answers each search with the next of `pages` ({entries,
// next} or a [status, body] refusal), recording the bodies and grants it got.
function gatekeeper(pages) {
  const seen = [];
  let grants = 0;
  globalThis.fetch = async (url, options) => {
    if (url === "/grant") return new Response(JSON.stringify({ grant: `g${++grants}` }), { status: 200 });
    seen.push({ body: JSON.parse(options.body), grant: options.headers.Authorization });
    const page = pages.shift();
    const [status, body] = Array.isArray(page) ? page : [200, page];
    return new Response(JSON.stringify(body), { status });
  };
  return seen;
}
const entries = (n) => Array.from({ length: n }, (_, i) => ({ ...ENTRY, request_id: `r${i}` }));
const auditLog = () => new AuditLog({ grantUrl: "/grant", csrfToken: "t", gatekeeperUrl: "https://gk" });

test("load follows next until it has enough entries, and returns where to continue", async () => {
  const seen = gatekeeper([{ entries: entries(2), next: "c1" }, { entries: [], next: "c2" }, { entries: entries(3), next: "c3" }]);
  const got = [];
  const next = await auditLog().load({ op: "get" }, { want: 5, onEntries: (page) => got.push(page.length) });
  assert.equal(next, "c3");
  assert.deepEqual(got, [2, 0, 3]);
  assert.deepEqual(seen.map((s) => s.body), [
    { op: "get", limit: 5 }, { op: "get", limit: 3, cursor: "c1" }, { op: "get", limit: 3, cursor: "c2" }]);
  assert.deepEqual(new Set(seen.map((s) => s.grant)), new Set(["Bearer g1"])); // one grant serves them all
});

test("load stops at the end of the log, and after MAX_CALLS_PER_LOAD calls", async () => {
  gatekeeper([{ entries: entries(1), next: null }]);
  assert.equal(await auditLog().load({}, { want: 100, onEntries: () => {} }), null);
  const seen = gatekeeper(Array.from({ length: 40 }, (_, i) => ({ entries: [], next: `c${i}` })));
  assert.equal(await auditLog().load({}, { want: 100, onEntries: () => {} }), `c${MAX_CALLS_PER_LOAD - 1}`);
  assert.equal(seen.length, MAX_CALLS_PER_LOAD);
});

test("an expired grant is renewed once; other refusals and malformed answers are thrown", async () => {
  const seen = gatekeeper([[401, { error: "expired", message: "grant expired" }], { entries: [], next: null }]);
  assert.equal(await auditLog().load({}, { want: 1, onEntries: () => {} }), null);
  assert.deepEqual(seen.map((s) => s.grant), ["Bearer g1", "Bearer g2"]);
  gatekeeper([[401, { error: "expired" }], [401, { error: "expired" }]]);
  await assert.rejects(auditLog().load({}, { want: 1, onEntries: () => {} }), { code: "expired" });
  gatekeeper([[403, { error: "address_denied", message: "no" }]]);
  await assert.rejects(auditLog().load({}, { want: 1, onEntries: () => {} }), { code: "address_denied" });
  gatekeeper([{ entries: [], next: 5 }]);
  await assert.rejects(auditLog().load({}, { want: 1, onEntries: () => {} }), { message: "The gatekeeper's answer is malformed." });
});

import { LookupError, addressFilter, resolveSubject, ticketFilter } from "../../static/js/audit/lookup.js";

const PEOPLE = [{ sub: "user:3", names: ["Bob Staff", "bob"] }, { sub: "user:4", names: ["Alice", "alice"] },
  { sub: "agent:7", names: ["Front desk button", ""] }];

test("resolveSubject finds a person by the name the log shows or the username, any case", () => {
  assert.equal(resolveSubject("Bob Staff", PEOPLE), "user:3");
  assert.equal(resolveSubject("  bob ", PEOPLE), "user:3");
  assert.equal(resolveSubject("front desk BUTTON", PEOPLE), "agent:7");
  assert.equal(resolveSubject("user:99", PEOPLE), "user:99");  // a subject as it is
  assert.throws(() => resolveSubject("Mallory", PEOPLE), LookupError);
  const twins = [...PEOPLE, { sub: "user:5", names: ["Bob Staff", "bob2"] }];
  assert.throws(() => resolveSubject("Bob Staff", twins), /Several people/);
});

test("ticketFilter takes a number, an id with or without dashes, or a prefix", () => {
  const hex = "0e1cb1ca9ebb47a78fbf3b950338a5b9";
  assert.deepEqual(ticketFilter("0E1CB1CA-9EBB-47A7-8FBF-3B950338A5B9"), { prefix: `tickets/${hex}/` });
  assert.deepEqual(ticketFilter(hex), { prefix: `tickets/${hex}/` });
  assert.deepEqual(ticketFilter("#42"), { number: 42 });
  assert.deepEqual(ticketFilter("42"), { number: 42 });
  assert.deepEqual(ticketFilter("tickets/"), { prefix: "tickets/" });
  assert.deepEqual(ticketFilter("tickets/0e1c"), { prefix: "tickets/0e1c" });
});

test("an address range in CIDR form becomes client_net, an address client_ip", () => {
  assert.deepEqual(addressFilter(" 203.0.113.0/24 "), { client_net: "203.0.113.0/24" });
  assert.deepEqual(addressFilter("2001:db8::/32"), { client_net: "2001:db8::/32" });
  assert.deepEqual(addressFilter("203.0.113.9"), { client_ip: "203.0.113.9" });
  // Malformed ranges go to the gatekeeper as they are: it refuses them with the reason.
  assert.deepEqual(addressFilter("10.0.0.1/8"), { client_net: "10.0.0.1/8" });
});
