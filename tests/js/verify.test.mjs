import assert from "node:assert/strict";
import { test } from "node:test";

import {
  MUST_PASS, ROUND_TRIP, TITLES, deleteOff, pass, refused, report, skip, storageCode, storageRefused,
  storageUnreachable, uploadAnswerWithheld, verdict, wrongStorageOrigin,
} from "../../static/js/settings/verify-checks.js";

const PASSING = MUST_PASS.map((id) => pass(id, "ok"));

test("every round-trip step has a title", () => {
  for (const id of ROUND_TRIP) assert.ok(TITLES[id], id);
});

test("all required checks passing is verified; the first failure is named, with its detail", () => {
  assert.equal(verdict(PASSING).status, "pass");
  assert.match(verdict([...PASSING, deleteOff()]).text, /^Verified, with 1 warning/);
  const failing = [...PASSING.filter((c) => c.id !== "probe_upload"),
    storageUnreachable("probe_upload", "https://b.s3.amazonaws.com", "https://portal.example", "POST")];
  const result = verdict(failing);
  assert.equal(result.status, "fail");
  assert.equal(result.first.id, "probe_upload");
  assert.match(result.text, /^Verification failed: Your browser uploads it to the bucket\. Your browser could not upload/);
});

test("a required check that did not run is not verified", () => {
  const result = verdict([...PASSING.filter((c) => c.id !== "probe_read"), skip("probe_read", "Not tried.")]);
  assert.equal(result.status, "fail");
  assert.equal(result.first.id, "probe_read");
});

test("the gatekeeper's refusal gets the setup's fix by its code", () => {
  const error = { source: "gatekeeper", code: "wrong_audience", message: "The gatekeeper refused: x (wrong_audience)" };
  assert.match(refused("probe_sign", error).hint, /^Its gatekeeper_id is not the id in these settings/);
  assert.match(refused("probe_sign", { ...error, code: "audit_unavailable" }).hint, /cannot write its audit log/);
  // A grant dated by the portal looks expired to a gatekeeper whose clock is ahead,
  // not yet valid to one whose clock is behind (tests/e2e/test_onboarding_verify.py, under faketime).
  assert.match(refused("probe_sign", { ...error, code: "expired" }).hint, /^Its clock is ahead of the portal's/);
  assert.match(refused("probe_sign", { ...error, code: "not_yet_valid" }).hint, /^Its clock is behind the portal's/);
  assert.equal(refused("probe_sign", { ...error, code: "mystery", hint: "theirs" }).hint, "theirs");
});

test("a presigned URL off the storage origin is refused before it is used", () => {
  assert.equal(wrongStorageOrigin("https://b.s3.amazonaws.com/k?x=1", "https://b.s3.amazonaws.com"), null);
  assert.match(wrongStorageOrigin("https://evil.example/k", "https://b.s3.amazonaws.com").detail, /evil\.example/);
  assert.match(wrongStorageOrigin("not a url", "https://b.s3.amazonaws.com").detail, /not a URL/);
});

test("S3's error code picks the fix; CORS failures say which method", () => {
  assert.equal(storageCode("<Error><Code>NoSuchBucket</Code></Error>"), "NoSuchBucket");
  assert.equal(storageCode(null), "");
  assert.match(storageRefused("probe_upload", 404, "NoSuchBucket").hint, /^The bucket does not exist/);
  assert.match(storageRefused("probe_upload", 500, "").detail, /HTTP 500/);
  assert.match(uploadAnswerWithheld("https://s", "https://p").detail, /does not allow POST from https:\/\/p/);
});

test("the report is pass/fail per check and nothing else", () => {
  assert.deepEqual(report([pass("reachable", "GET /v1/health answered in 3 ms."), deleteOff()]),
    { reachable: "pass", probe_delete: "warn" });
});
