import assert from "node:assert/strict";
import { test } from "node:test";

import {
  CLOCK_LIMIT, CLOCK_WARN, PROTOCOL, TITLES, clip, evaluate, notReached, summarize,
} from "../../static/js/settings/checks.js";

const HEALTHY = Object.freeze({
  protocol: PROTOCOL, gatekeeper_id: "gk-acme", vendor_kids: ["acme-1"], time: 1_800_000_000,
  audit: "ok", enabled: true, encryption: "sse-s3", version: "1.2.3",
  bucket: "acme-reports", region: "eu-west-1", storage: "ok", storage_problem: "", kms_key_id: "",
  upload_encryption: "sse-s3",
  features: ["approvals"], approvers: ["alice-laptop"], approvals_required: 1,
});
const EXPECTED = Object.freeze({ gatekeeperId: "gk-acme", activeKid: "acme-1", nextKid: "", previousKids: [],
  bucket: "acme-reports", region: "eu-west-1" });
const IN_STEP = Object.freeze({ portalSkew: 0, browserSkew: 0 });

const byId = (checks) => Object.fromEntries(checks.map((c) => [c.id, c]));
const statuses = (checks) => Object.fromEntries(checks.map((c) => [c.id, c.status]));

test("a healthy gatekeeper passes every check, in the checklist's order", () => {
  const checks = evaluate(HEALTHY, EXPECTED, IN_STEP, { elapsedMs: 12.4 });
  assert.deepEqual(checks.map((c) => [c.id, c.status]), [
    ["reachable", "pass"], ["protocol", "pass"], ["gatekeeper_id", "pass"], ["active_kid", "pass"],
    ["clock", "pass"], ["audit", "pass"], ["enabled", "pass"], ["storage", "pass"], ["bucket", "pass"],
    ["region", "pass"], ["approvals", "pass"], ["encryption", "info"],
  ]);
  const c = byId(checks);
  assert.equal(c.reachable.detail, "GET /v1/health answered in 12 ms. Version 1.2.3.");
  assert.equal(c.gatekeeper_id.detail, "“gk-acme”.");
  assert.equal(c.active_kid.detail, "acme-1.");
  assert.equal(c.clock.detail, "The gatekeeper's clock is within a second of the portal's.");
  assert.equal(c.storage.detail, "Bucket “acme-reports” answered in eu-west-1.");
  assert.equal(c.bucket.detail, "“acme-reports”.");
  assert.equal(c.region.detail, "“eu-west-1”.");
  assert.equal(c.encryption.detail,
    "sse-s3: S3 encrypts each object with keys it manages (SSE-S3). Uploads through it ask for sse-s3.");
  for (const check of checks) {
    assert.equal(check.title, TITLES[check.id]);
    assert.equal(check.hint, null);
    assert.equal(check.anchor, null);
  }
  assert.deepEqual(summarize(checks), { status: "pass", text: "All checks passed: the gatekeeper is ready for this portal." });
});

test("without a time taken or a version, the first check says only that it answered", () => {
  assert.equal(evaluate({ ...HEALTHY, version: 3 }, EXPECTED, IN_STEP)[0].detail, "GET /v1/health answered.");
});

test("a protocol 1 gatekeeper still works, with warnings: approvals are not enforced there", () => {
  const { features, approvers, approvals_required, ...old } = HEALTHY;
  const c = byId(evaluate({ ...old, protocol: 1 }, EXPECTED, IN_STEP));
  assert.equal(c.protocol.status, "warn");
  assert.equal(c.approvals.status, "warn");
  assert.match(c.approvals.detail, /approvals are not enforced there/);
});

test("the approvals check names approvers made on the page that the gatekeeper does not list", () => {
  const c = byId(evaluate(HEALTHY, { ...EXPECTED, approverIds: ["alice-laptop", "bob-browser"] }, IN_STEP));
  assert.equal(c.approvals.status, "warn");
  assert.match(c.approvals.detail, /It does not list bob-browser/);
  assert.equal(c.approvals.anchor, "#approvers");
  const none = byId(evaluate({ ...HEALTHY, approvers: [] }, EXPECTED, IN_STEP));
  assert.equal(none.approvals.status, "pass");
  assert.match(none.approvals.detail, /refuses every vendor support grant/);
  const two = byId(evaluate({ ...HEALTHY, approvers: ["a", "b"], approvals_required: 2 }, EXPECTED, IN_STEP));
  assert.equal(two.approvals.detail, "Approvers: a, b; 2 must sign each approval.");
});

test("a gatekeeper speaking another protocol fails, quoting what it said", () => {
  const c = byId(evaluate({ ...HEALTHY, protocol: 9 }, EXPECTED, IN_STEP));
  assert.equal(c.protocol.status, "fail");
  assert.equal(c.protocol.detail, `It speaks protocol “9”; this portal speaks ${PROTOCOL}.`);
  assert.equal(byId(evaluate({ ...HEALTHY, protocol: undefined }, EXPECTED, IN_STEP)).protocol.detail,
    `It speaks protocol “none”; this portal speaks ${PROTOCOL}.`);
});

test("the gatekeeper id names both ids, or says the settings have none", () => {
  const wrong = byId(evaluate({ ...HEALTHY, gatekeeper_id: "gk-other" }, EXPECTED, IN_STEP)).gatekeeper_id;
  assert.equal(wrong.status, "fail");
  assert.equal(wrong.detail, "It calls itself “gk-other”; these settings say “gk-acme”.");
  assert.match(wrong.hint, /wrong_audience/);
  const none = byId(evaluate({ ...HEALTHY, gatekeeper_id: 5 }, { ...EXPECTED, gatekeeperId: "" }, IN_STEP)).gatekeeper_id;
  assert.equal(none.detail, "These settings have no gatekeeper id; it calls itself “nothing”.");
});

test("untrusted text from the gatekeeper is cut short", () => {
  assert.equal(clip("abc", 3), "abc");
  assert.equal(clip("abcd", 3), "ab…");
  assert.equal(clip(null), "null");
  const long = "x".repeat(500);
  const c = byId(evaluate({ ...HEALTHY, gatekeeper_id: long, version: long, encryption: long }, EXPECTED, IN_STEP));
  assert.equal(c.gatekeeper_id.detail, `It calls itself “${clip(long)}”; these settings say “gk-acme”.`);
  assert.ok(c.reachable.detail.length < 100);
  assert.equal(c.encryption.detail, `${clip(long, 40)}: a mode this portal does not know. Uploads through it ask for sse-s3.`);
});

test("the active key: not listed, not held, not trusted", () => {
  const unlisted = byId(evaluate({ ...HEALTHY, vendor_kids: "acme-1" }, EXPECTED, IN_STEP));
  assert.equal(unlisted.active_kid.detail, "It did not list the vendor keys it trusts (vendor_kids).");
  assert.equal(unlisted.active_kid.anchor, "#vendor-keys");
  assert.equal(unlisted.unknown_kids, undefined);
  assert.equal(byId(evaluate(HEALTHY, { ...EXPECTED, activeKid: "" }, IN_STEP)).active_kid.hint, "Contact vendor support.");
  const untrusted = byId(evaluate({ ...HEALTHY, vendor_kids: [] }, EXPECTED, IN_STEP)).active_kid;
  assert.equal(untrusted.status, "fail");
  assert.match(untrusted.detail, /^It does not trust acme-1, the key this portal signs your grants with/);
});

test("during a rotation the next key is checked, and after one the previous keys", () => {
  const rotating = { ...EXPECTED, nextKid: "acme-2", previousKids: ["acme-0"] };
  const before = byId(evaluate(HEALTHY, rotating, IN_STEP));
  assert.equal(before.next_kid.status, "warn");
  assert.match(before.next_kid.detail, /Switching now would make it refuse every grant/);
  assert.equal(before.previous_kids.status, "warn");
  assert.match(before.previous_kids.detail, /^It does not trust acme-0: grants signed just before/);
  const after = byId(evaluate({ ...HEALTHY, vendor_kids: ["acme-0", "acme-1", "acme-2"] }, rotating, IN_STEP));
  assert.equal(after.next_kid.status, "pass");
  assert.equal(after.next_kid.detail, "acme-2: you can switch to it.");
  assert.equal(after.previous_kids.detail, "acme-0.");
  assert.deepEqual(evaluate(HEALTHY, rotating, IN_STEP).map((c) => c.id).slice(3, 6),
    ["active_kid", "next_kid", "previous_kids"]);
});

test("keys this portal does not hold are a warning, and a long list is cut", () => {
  const strangers = Array.from({ length: 15 }, (_, i) => `k${i}`);
  const c = byId(evaluate({ ...HEALTHY, vendor_kids: ["acme-1", ...strangers, 7] }, EXPECTED, IN_STEP));
  assert.equal(c.active_kid.status, "pass");
  assert.equal(c.unknown_kids.status, "warn");
  assert.equal(c.unknown_kids.detail,
    `It also trusts ${strangers.slice(0, 12).join(", ")} and 3 more: not keys this portal holds for your tenant.`);
  assert.equal(byId(evaluate({ ...HEALTHY, vendor_kids: ["acme-1", "x"] }, EXPECTED, IN_STEP)).unknown_kids.detail,
    "It also trusts x: not a key this portal holds for your tenant.");
});

test("the clock warns past CLOCK_WARN and fails past CLOCK_LIMIT", () => {
  const clock = (skew) => byId(evaluate(HEALTHY, EXPECTED, { portalSkew: skew, browserSkew: skew })).clock;
  assert.equal(clock(CLOCK_WARN).status, "pass");
  assert.equal(clock(CLOCK_WARN + 0.5).status, "warn");
  assert.equal(clock(-CLOCK_LIMIT).status, "warn");
  assert.equal(clock(-CLOCK_LIMIT - 1).status, "fail");
  assert.equal(clock(-CLOCK_LIMIT - 1).detail, "The gatekeeper's clock is 31 s behind the portal's.");
  assert.equal(clock(12).detail, "The gatekeeper's clock is 12 s ahead of the portal's.");
  assert.match(clock(31).hint, /NTP/);
});

test("the clock check says whose clock it used, and when the browser's is off", () => {
  const noPortal = byId(evaluate(HEALTHY, EXPECTED, { portalSkew: null, browserSkew: -12 })).clock;
  assert.equal(noPortal.status, "warn");
  assert.equal(noPortal.detail, "The gatekeeper's clock is 12 s behind your computer's. "
    + "(The portal's clock could not be read, so your computer's clock stood in for it.)");
  const browserOff = byId(evaluate(HEALTHY, EXPECTED, { portalSkew: 0, browserSkew: 5 })).clock;
  assert.equal(browserOff.status, "pass");
  assert.equal(browserOff.detail, "The gatekeeper's clock is within a second of the portal's. "
    + "Your computer's clock is 5 s behind the portal's; that does not matter for grants.");
  assert.equal(byId(evaluate({ ...HEALTHY, time: "now" }, EXPECTED, IN_STEP)).clock.detail, "It did not say what time it is.");
});

test("an unwritable audit store and a thrown kill switch fail", () => {
  const c = byId(evaluate({ ...HEALTHY, audit: "unavailable", enabled: "yes" }, EXPECTED, IN_STEP));
  assert.equal(c.audit.status, "fail");
  assert.match(c.audit.detail, /^Its audit store is “unavailable”: it refuses every request/);
  assert.equal(c.enabled.status, "fail");
  assert.equal(byId(evaluate({ ...HEALTHY, audit: undefined }, EXPECTED, IN_STEP)).audit.detail.slice(0, 40),
    "Its audit store is “not reported”: it re");
  assert.equal(byId(evaluate({ ...HEALTHY, encryption: null }, EXPECTED, IN_STEP)).encryption.detail, "Not reported.");
});

test("summarize counts failures and warnings", () => {
  const checks = evaluate({ ...HEALTHY, protocol: 0, audit: "x", vendor_kids: ["acme-1", "y"] }, EXPECTED,
    { portalSkew: 15, browserSkew: 15 });
  assert.deepEqual(statuses(checks), { reachable: "pass", protocol: "fail", gatekeeper_id: "pass", active_kid: "pass",
    unknown_kids: "warn", clock: "warn", audit: "fail", enabled: "pass", storage: "pass", bucket: "pass",
    region: "pass", approvals: "pass", encryption: "info" });
  assert.deepEqual(summarize(checks), { status: "fail", text: "2 checks failed, 2 warnings: see how to fix below." });
  assert.deepEqual(summarize(checks.filter((c) => c.id !== "audit" && c.id !== "protocol" && c.id !== "clock")),
    { status: "warn", text: "Usable, with 1 warning: see below." });
});

test("a gatekeeper that did not answer fails once, and the rest is not checked", () => {
  const checks = notReached("Could not reach it.", "Is it running?");
  assert.deepEqual(checks[0], { id: "reachable", title: TITLES.reachable, status: "fail",
    detail: "Could not reach it.", hint: "Is it running?", anchor: null });
  assert.deepEqual(checks.slice(1).map((c) => [c.id, c.status]), ["protocol", "gatekeeper_id", "active_kid", "clock",
    "audit", "enabled", "storage"].map((id) => [id, "skip"]));
  assert.equal(summarize(checks).text, "1 check failed: see how to fix below.");
});

test("an unreachable bucket fails, saying why and how to fix it", () => {
  const missing = byId(evaluate({ ...HEALTHY, storage: "unreachable", storage_problem: "no_such_bucket",
    encryption: "unknown" }, EXPECTED, IN_STEP));
  assert.equal(missing.storage.status, "fail");
  assert.equal(missing.storage.detail, "Bucket “acme-reports” is unreachable from the gatekeeper: "
    + "S3 says the bucket does not exist. Uploads and reports fail until it is.");
  assert.match(missing.storage.hint, /^Create the bucket/);
  assert.match(missing.encryption.detail, /^unknown: The gatekeeper could not read/);
  assert.equal(summarize(Object.values(missing)).status, "fail");
  const hints = (problem) => byId(evaluate({ ...HEALTHY, storage: "unreachable", storage_problem: problem },
    EXPECTED, IN_STEP)).storage;
  assert.match(hints("access_denied").hint, /s3:ListBucket \(no prefix condition\)/);
  assert.match(hints("wrong_region").detail, /another region than its storage\.region/);
  assert.match(hints("no_connection").detail, /S3 did not answer it in time/);
  assert.match(hints("no_credentials").hint, /role/);
  const odd = hints("x".repeat(300));
  assert.equal(odd.detail, `Bucket “acme-reports” is unreachable from the gatekeeper: S3 answered “${clip("x".repeat(300))}”. `
    + "Uploads and reports fail until it is.");
  assert.match(odd.hint, /storage\.bucket, storage\.region/);
});

test("an older gatekeeper that does not report its bucket is a warning, not a pass", () => {
  const older = { ...HEALTHY };
  for (const key of ["bucket", "region", "storage", "storage_problem", "kms_key_id", "upload_encryption"]) delete older[key];
  const checks = evaluate(older, EXPECTED, IN_STEP);
  const c = byId(checks);
  assert.equal(c.storage.status, "warn");
  assert.equal(c.bucket, undefined);
  assert.equal(c.region, undefined);
  assert.equal(summarize(checks).status, "warn");
});

test("a bucket or region other than the one chosen in the settings is a warning naming both", () => {
  const c = byId(evaluate({ ...HEALTHY, bucket: "other-bucket", region: "us-east-1" }, EXPECTED, IN_STEP));
  assert.equal(c.bucket.status, "warn");
  assert.equal(c.bucket.detail, "It uses bucket “other-bucket”; these settings say “acme-reports”.");
  assert.equal(c.region.status, "warn");
  assert.equal(c.region.detail, "It uses region “us-east-1”; these settings say “eu-west-1”.");
  assert.match(c.region.hint, /correct the region in the settings above/);
  const unset = byId(evaluate(HEALTHY, { ...EXPECTED, bucket: "", region: "" }, IN_STEP));
  assert.equal(unset.bucket.status, "info");
  assert.equal(unset.bucket.detail, "It uses bucket “acme-reports”; these settings name none.");
  assert.equal(unset.region.status, "info");
});

test("the encryption line says what S3 reports, with the KMS key and what uploads ask for", () => {
  const kms = byId(evaluate({ ...HEALTHY, encryption: "sse-kms", kms_key_id: "arn:aws:kms:eu-west-1:1:key/k",
    upload_encryption: "sse-kms" }, EXPECTED, IN_STEP)).encryption;
  assert.equal(kms.status, "info");
  assert.equal(kms.detail, "sse-kms: S3 encrypts each object with your KMS key (SSE-KMS). "
    + "Key arn:aws:kms:eu-west-1:1:key/k. Uploads through it ask for sse-kms.");
  assert.match(byId(evaluate({ ...HEALTHY, encryption: "none" }, EXPECTED, IN_STEP)).encryption.detail,
    /^none: The bucket has no default encryption configured\. Uploads through it ask for sse-s3\.$/);
});

test("the identity check: off on both sides says nothing; otherwise it compares and asks the browser's reach", () => {
  const idpOn = { ...HEALTHY, features: ["approvals", "identity"],
    identity: { issuer: "https://idp.acme", audience: "pages", ops: ["get"] } };
  const ours = { ...EXPECTED, idp: { issuer: "https://idp.acme", clientId: "pages" } };
  const identity = (health, expected, idp) => byId(evaluate(health, expected, IN_STEP, { idp })).identity;
  assert.equal(identity(HEALTHY, EXPECTED, null), undefined);
  assert.equal(identity(HEALTHY, ours, { reachable: true }).status, "warn"); // the gatekeeper does not check
  assert.equal(identity(idpOn, EXPECTED, null).status, "fail"); // no IdP here: reports cannot be read
  assert.equal(identity(idpOn, { ...ours, idp: { issuer: "https://idp.acme", clientId: "other" } },
    { reachable: true }).status, "fail");
  const unreachable = identity(idpOn, ours, { reachable: false, detail: "no answer" });
  assert.equal(unreachable.status, "fail");
  assert.match(unreachable.detail, /no answer/);
  assert.equal(identity(idpOn, ours, { reachable: true }).status, "pass");
});
