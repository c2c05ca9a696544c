// The onboarding verification's round trip, as pure functions: what each step's
// outcome means and how to fix it (no DOM, no network: verify.js does those).
// The health checks before it are checks.js's, unchanged.

import { TITLES as HEALTH_TITLES, clip } from "./checks.js";

export const TITLES = {
  ...HEALTH_TITLES,
  probe_grant: "The portal gives grants for a probe object",
  probe_sign: "The gatekeeper signs an upload of it",
  probe_upload: "Your browser uploads it to the bucket",
  probe_read: "Your browser reads it back",
  probe_delete: "The gatekeeper deletes it",
};

export const ROUND_TRIP = ["probe_grant", "probe_sign", "probe_upload", "probe_read", "probe_delete"];

// The gatekeeper's refusal of the probe's sign, by reason code: what to fix in
// the setup (the help-desk wording of lib/gatekeeper-hints.js is for later, when
// it is set up).
const SIGN_FIXES = {
  wrong_audience: "Its gatekeeper_id is not the id in these settings: make the two the same.",
  unknown_kid: "It does not trust the portal's active key: paste the [vendor_keys] block below into its config and "
    + "restart it (or update the stack's VendorKeys parameter).",
  bad_signature: "It holds another public key under the portal's key id: paste the [vendor_keys] block below.",
  wrong_issuer: "Its issuer is not this portal's origin: set issuer (the stack's PortalOrigin) to it.",
  // A grant lives PROBE_GRANT_LIFETIME (120 s) from the portal's now: a gatekeeper
  // whose clock is ahead sees it expired, one behind sees it not valid yet.
  expired: "Its clock is ahead of the portal's by more than it tolerates: synchronise its clock (NTP).",
  not_yet_valid: "Its clock is behind the portal's by more than it tolerates: synchronise its clock (NTP).",
  audit_unavailable: "It cannot write its audit log, so it refuses everything (fail closed): check its audit store "
    + "(SQLite file, DynamoDB table) and its permissions on it.",
  kill_switch: "Its kill switch is thrown: set enabled = true in its config and restart it.",
  op_disabled: "Its owner switched this op off (allowed_ops): uploads need put.",
  address_denied: "Its access policy refuses your address: its [acl] allow/deny lists.",
  country_denied: "Its access policy refuses your country: its [acl] countries.",
  origin_not_allowed: "It does not list this portal in its allowed_origins.",
};

function check(id, status, detail, hint = null) {
  return { id, title: TITLES[id], status, detail, hint, anchor: null };
}

export function skip(id, detail) {
  return check(id, "skip", detail);
}

export function pass(id, detail) {
  return check(id, "pass", detail);
}

// The portal's or the gatekeeper's refusal (an ApiError from lib/http.js).
export function refused(id, error) {
  const fix = error?.source === "gatekeeper" && Object.hasOwn(SIGN_FIXES, error.code) ? SIGN_FIXES[error.code] : null;
  return check(id, "fail", clip(error?.message || String(error), 300), fix || error?.hint || null);
}

// The presigned URL must be at the storage origin these settings name: the page's
// CSP allows exactly that one, and so do the report pages'.
export function wrongStorageOrigin(url, expected) {
  let origin = "";
  try {
    origin = new URL(url).origin;
  } catch {
    origin = "(not a URL)";
  }
  if (origin === expected) return null;
  return check("probe_sign", "fail", `It signed an upload to ${clip(origin, 200)}; these settings say the storage `
    + `origin is ${clip(expected, 200)}.`, "Correct the storage origin below (the stack's StorageOrigin output), "
    + "or the gatekeeper's storage.endpoint_url, so that they agree.");
}

// fetch() refused (a TypeError): storage unreachable, or its answer without an
// Access-Control-Allow-Origin for this page (the two look the same to a page).
export function storageUnreachable(id, storageOrigin, portalOrigin, method) {
  return check(id, "fail", `Your browser could not ${method === "POST" ? "upload to" : "read from"} storage at `
    + `${clip(storageOrigin, 200)}: its CORS rule does not allow this portal (${clip(portalOrigin, 200)}), or it is `
    + "unreachable from here.",
  `Allow ${portalOrigin} with GET and POST in the bucket's CORS rule (the stack sets it from PortalOrigin); `
    + "check that the storage origin below is reachable from your network.");
}

// The object landed (it reads back) but this page was not shown the upload's
// answer: the rule lists this origin for GET, not for POST.
export function uploadAnswerWithheld(storageOrigin, portalOrigin) {
  return check("probe_upload", "fail", `The probe landed in the bucket, but storage at ${clip(storageOrigin, 200)} `
    + `withheld its answer from this page: its CORS rule does not allow POST from ${clip(portalOrigin, 200)}.`,
  `Add POST to the AllowedMethods of the bucket's CORS rule for ${portalOrigin}: agents' uploads and notes use it.`);
}

// S3's XML error, read for its <Code>: the words of S3, cut short.
export function storageCode(xml) {
  const match = /<Code>([^<]{1,64})<\/Code>/.exec(typeof xml === "string" ? xml : "");
  return match ? match[1] : "";
}

const STORAGE_FIXES = {
  NoSuchBucket: "The bucket does not exist: deploy the stack, or correct storage.bucket in the gatekeeper's config.",
  AccessDenied: "S3 refused the gatekeeper's signature: its role lacks s3:PutObject/GetObject on tickets/*, or the "
    + "bucket policy refuses it.",
  SignatureDoesNotMatch: "S3 refused the gatekeeper's signature: check its credentials and storage.region.",
  AuthorizationHeaderMalformed: "S3 says the region is wrong: set storage.region to the bucket's region.",
};

export function storageRefused(id, status, code) {
  const said = code ? `S3 answered ${status} ${clip(code, 64)}.` : `Storage answered HTTP ${status}.`;
  return check(id, "fail", said, STORAGE_FIXES[code] || "Check the bucket, its region and the gatekeeper's role.");
}

export function readMismatch() {
  return check("probe_read", "fail", "What came back is not what was uploaded.",
    "Something between your browser and the bucket changes objects: check the storage origin and any proxy.");
}

export function deleteOff() {
  return check("probe_delete", "warn", "Its owner switched delete off (allowed_ops): the probe object stays in the "
    + "bucket under tickets/_probe/.", "Delete it yourself, or let its S3 lifecycle expire it.");
}

// What must pass for "verified" (tenants/onboarding.py MUST_PASS, the portal's
// own verdict on the report): the rest must only not fail.
export const MUST_PASS = ["reachable", "gatekeeper_id", "active_kid", "clock", "audit", "enabled", "storage",
  "probe_grant", "probe_sign", "probe_upload", "probe_read"];

// The verdict, and the first failure named: shown before anything says "saved".
export function verdict(checks) {
  const failed = checks.filter((c) => c.status === "fail");
  if (failed.length) {
    const first = failed[0];
    return { status: "fail", first, text: `Verification failed: ${first.title}. ${first.detail}`
      + (failed.length > 1 ? ` (${failed.length - 1} more below.)` : "") };
  }
  const missing = MUST_PASS.map((id) => checks.find((c) => c.id === id)).find((c) => !c || c.status !== "pass");
  if (missing) {
    return { status: "fail", first: missing, text: `Not verified: “${missing.title}” did not pass. ${missing.detail}` };
  }
  const warns = checks.filter((c) => c.status === "warn").length;
  return { status: "pass", first: null, text: warns
    ? `Verified, with ${warns} ${warns === 1 ? "warning" : "warnings"}: see below.`
    : "Verified: the gatekeeper and its bucket work from this browser." };
}

// What the portal records: pass/fail per check, nothing else.
export function report(checks) {
  return Object.fromEntries(checks.map((c) => [c.id, c.status]));
}
