// The gatekeeper check's verdicts, as pure functions of what the gatekeeper's
// health answer says and what this portal expects (no DOM, no network: the
// page's gatekeeper-check.js does those). Every string the gatekeeper sent is
// untrusted: shown with textContent, and cut short here.

export const PROTOCOL = 3;
// Protocol 1 gatekeepers predate `features` (and approvals): the portal still works with them.
export const PROTOCOLS = [1, 2, 3];
// The gatekeeper accepts grants whose times are off by at most its clock_leeway
// (30 s by default, and what the portal's key rotation allows for).
export const CLOCK_LIMIT = 30;
export const CLOCK_WARN = 10;

const MAX_TEXT = 120;
const MAX_KIDS = 12;
const KEYS_HINT = "Paste the [vendor_keys] block below into its config and restart it.";

export const TITLES = {
  reachable: "Reachable from your browser",
  protocol: `Speaks protocol ${PROTOCOL}`,
  approvals: "Enforces your approvals of vendor support",
  identity: "Asks your identity provider who reads",
  gatekeeper_id: "Gatekeeper id matches",
  active_kid: "Trusts the portal's active key",
  next_kid: "Trusts the portal's next key",
  previous_kids: "Trusts the portal's previous keys",
  unknown_kids: "Trusts only this portal's keys",
  clock: "Clock agrees with the portal's",
  audit: "Audit log can be written",
  enabled: "Switched on",
  storage: "Reaches its bucket",
  bucket: "Bucket is the one chosen here",
  region: "Region is the one chosen here",
  encryption: "Encryption at rest",
};

// The bucket's default encryption, as the gatekeeper says S3 reports it.
const ENCRYPTION = {
  "sse-s3": "S3 encrypts each object with keys it manages (SSE-S3).",
  "sse-kms": "S3 encrypts each object with your KMS key (SSE-KMS).",
  "dsse-kms": "S3 encrypts each object twice, with your KMS key (DSSE-KMS).",
  none: "The bucket has no default encryption configured.",
  unknown: "The gatekeeper could not read the bucket's encryption settings.",
  cse: "Objects are encrypted before they reach S3, under your master key (client-side).",
};

// Why the gatekeeper cannot reach its bucket (health's storage_problem): what it means, and the fix.
const STORAGE_PROBLEMS = {
  no_such_bucket: ["S3 says the bucket does not exist.",
    "Create the bucket (deploy the gatekeeper's stack), or correct storage.bucket in its config."],
  access_denied: ["S3 refused its role access to the bucket.",
    "Allow its role s3:ListBucket (no prefix condition) and s3:GetEncryptionConfiguration on the bucket."],
  wrong_region: ["The bucket is in another region than its storage.region, so S3 would refuse every presigned URL.",
    "Set storage.region in its config to the bucket's region."],
  no_credentials: ["It has no AWS credentials to sign with.",
    "Give it a role (Lambda, instance profile) or the standard AWS_* variables."],
  no_connection: ["S3 did not answer it in time.",
    "Check its network route to S3 (or storage.endpoint_url) and any firewall or VPC endpoint policy."],
};
const STORAGE_HINT_OTHER = "Check storage.bucket, storage.region and its role's permissions on the bucket.";

export function clip(value, max = MAX_TEXT) {
  const s = String(value);
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

function quoted(value) {
  return `“${clip(value)}”`;
}

function kidList(kids) {
  const shown = kids.slice(0, MAX_KIDS).map((kid) => clip(kid, 64)).join(", ");
  return kids.length > MAX_KIDS ? `${shown} and ${kids.length - MAX_KIDS} more` : shown;
}

function check(id, status, detail, extra = {}) {
  return { id, title: TITLES[id], status, detail, hint: null, anchor: null, ...extra };
}

function seconds(value) {
  const n = Math.round(Math.abs(value));
  return `${n} s`;
}

// "4 s ahead of the portal's" / "within a second of the portal's"
function offset(value, whose) {
  if (Math.abs(value) < 1) return `within a second of ${whose}`;
  return `${seconds(value)} ${value > 0 ? "ahead of" : "behind"} ${whose}`;
}

function clockCheck(health, clock) {
  if (typeof health.time !== "number" || !Number.isFinite(health.time)) {
    return check("clock", "fail", "It did not say what time it is.");
  }
  const whose = clock.portalSkew == null ? "your computer's" : "the portal's";
  const skew = clock.portalSkew ?? clock.browserSkew;
  const abs = Math.abs(skew);
  let detail = `The gatekeeper's clock is ${offset(skew, whose)}.`;
  if (clock.portalSkew == null) {
    detail += " (The portal's clock could not be read, so your computer's clock stood in for it.)";
  } else if (Math.abs(clock.browserSkew - clock.portalSkew) >= 2) {
    // Only informative: grants are dated by the portal and checked by the gatekeeper.
    detail += ` Your computer's clock is ${offset(clock.portalSkew - clock.browserSkew, "the portal's")};`
      + " that does not matter for grants.";
  }
  if (abs > CLOCK_LIMIT) {
    return check("clock", "fail", detail, {
      hint: `More than ${CLOCK_LIMIT} s apart, it refuses the portal's grants as expired or not yet valid. `
        + "Synchronise its clock (NTP).",
    });
  }
  if (abs > CLOCK_WARN) {
    return check("clock", "warn", detail, {
      hint: `Within the ${CLOCK_LIMIT} s it tolerates, but drifting: check its time synchronisation (NTP).`,
    });
  }
  return check("clock", "pass", detail);
}

function reachableCheck(health, elapsedMs) {
  const version = typeof health.version === "string" ? ` Version ${clip(health.version, 40)}.` : "";
  const took = elapsedMs == null ? "" : ` in ${Math.round(elapsedMs)} ms`;
  return check("reachable", "pass", `GET /v1/health answered${took}.${version}`);
}

function protocolCheck(health) {
  if (health.protocol === PROTOCOL) return check("protocol", "pass", `Protocol ${PROTOCOL}.`);
  return PROTOCOLS.includes(health.protocol)
    ? check("protocol", "warn", `Protocol ${health.protocol}: an older release, which this portal still works with.`,
      { hint: `Deploy a gatekeeper release that speaks protocol ${PROTOCOL}.` })
    : check("protocol", "fail", `It speaks protocol ${quoted(health.protocol ?? "none")}; this portal speaks ${PROTOCOL}.`,
      { hint: "Deploy a gatekeeper release that speaks this portal's protocol." });
}

function gatekeeperIdCheck(health, expected) {
  const theirs = typeof health.gatekeeper_id === "string" ? health.gatekeeper_id : "";
  if (!expected.gatekeeperId) {
    return check("gatekeeper_id", "fail",
      `These settings have no gatekeeper id; it calls itself ${quoted(theirs || "nothing")}.`,
      { hint: "Enter its gatekeeper_id in the settings above and save: grants are addressed to that id." });
  }
  if (theirs === expected.gatekeeperId) return check("gatekeeper_id", "pass", `${quoted(theirs)}.`);
  return check("gatekeeper_id", "fail",
    `It calls itself ${quoted(theirs || "nothing")}; these settings say ${quoted(expected.gatekeeperId)}.`,
    { hint: "It refuses grants addressed to another id (wrong_audience). "
        + "Correct the id in the settings above, or gatekeeper_id in its config." });
}

// The kids the gatekeeper says it trusts, or null if it did not say.
function trustedKids(health) {
  return Array.isArray(health.vendor_kids) ? health.vendor_kids.filter((k) => typeof k === "string") : null;
}

const keysHint = { hint: KEYS_HINT, anchor: "#vendor-keys" };

function activeKidCheck(kids, expected) {
  if (kids == null) {
    return check("active_kid", "fail", "It did not list the vendor keys it trusts (vendor_kids).", keysHint);
  }
  if (!expected.activeKid) {
    return check("active_kid", "fail", "This portal has no active signing key for your tenant.",
      { hint: "Contact vendor support." });
  }
  if (kids.includes(expected.activeKid)) return check("active_kid", "pass", `${clip(expected.activeKid, 64)}.`);
  return check("active_kid", "fail",
    `It does not trust ${clip(expected.activeKid, 64)}, the key this portal signs your grants with, `
      + "so it refuses every grant.", keysHint);
}

// Only during a rotation (a next key exists).
function nextKidCheck(kids, expected) {
  if (kids == null || !expected.nextKid) return null;
  return kids.includes(expected.nextKid)
    ? check("next_kid", "pass", `${clip(expected.nextKid, 64)}: you can switch to it.`)
    : check("next_kid", "warn",
      `It does not trust ${clip(expected.nextKid, 64)}, the key prepared for the next rotation, yet. `
        + "Switching now would make it refuse every grant.", keysHint);
}

// Only after a rotation (previous keys exist).
function previousKidsCheck(kids, expected) {
  if (kids == null || !expected.previousKids.length) return null;
  const missing = expected.previousKids.filter((kid) => !kids.includes(kid));
  return missing.length
    ? check("previous_kids", "warn",
      `It does not trust ${kidList(missing)}: grants signed just before the last key rotation `
        + "are refused until they expire (five minutes at most).", keysHint)
    : check("previous_kids", "pass", `${kidList(expected.previousKids)}.`);
}

// Only if the gatekeeper trusts keys this portal does not hold for the tenant.
function unknownKidsCheck(kids, expected) {
  if (kids == null) return null;
  const ours = new Set([expected.activeKid, expected.nextKid, ...expected.previousKids]);
  const unknown = kids.filter((kid) => !ours.has(kid));
  if (!unknown.length) return null;
  return check("unknown_kids", "warn",
    `It also trusts ${kidList(unknown)}: ${unknown.length === 1 ? "not a key" : "not keys"} this portal `
      + "holds for your tenant.",
    { hint: "Replace its [vendor_keys] with the block below, so that it trusts only keys in use.",
      anchor: "#vendor-keys" });
}

// Support grants: refused by a gatekeeper that lists "approvals" among its
// features unless approver keys of yours sign them; honoured without by an older one.
function approvalsCheck(health, expected) {
  const features = Array.isArray(health.features) ? health.features : [];
  if (!features.includes("approvals")) {
    return check("approvals", "warn", "It does not list approvals among its features: approvals are not "
      + "enforced there, so it would honour a vendor support grant without your approval.",
    { hint: "Deploy a gatekeeper release that lists \"approvals\" in its health (protocol 2)." });
  }
  const listed = Array.isArray(health.approvers) ? health.approvers.filter((a) => typeof a === "string") : [];
  const required = Number.isInteger(health.approvals_required) ? health.approvals_required : 1;
  if (!listed.length) {
    return check("approvals", "pass", "It refuses every vendor support grant: no approver keys are listed "
      + "(to let support in when you approve, paste the [approvers] block below into its config).");
  }
  const missing = (expected.approverIds || []).filter((id) => !listed.includes(id));
  const detail = `Approvers: ${kidList(listed)}; ${required} must sign each approval.`;
  return missing.length
    ? check("approvals", "warn", `${detail} It does not list ${kidList(missing)}, made on this page.`,
      { hint: "Paste the [approvers] block below into its config and restart it.", anchor: "#approvers" })
    : check("approvals", "pass", detail);
}

// [identity]: the gatekeeper's (health.identity) against these settings' IdP, and
// whether this browser reached the IdP. idp: {reachable, detail} or null (none set).
function identityCheck(health, expected, idp) {
  const features = Array.isArray(health.features) ? health.features : [];
  const theirs = health.identity && typeof health.identity === "object" ? health.identity : null;
  const ours = expected.idp;
  if (!features.includes("identity") || !theirs) {
    return ours
      ? check("identity", "warn", "These settings name an identity provider, but the gatekeeper does not list "
        + "identity among its features: it does not check who reads.",
      { hint: "Set [identity] in its config (docs/operations.md), with a gatekeeper release of protocol 3." })
      : null; // off on both sides: nothing to say
  }
  if (!ours) {
    return check("identity", "fail", `It asks ${quoted(clip(text(theirs.issuer), MAX_TEXT))} for every reader, `
      + "but these settings name no identity provider: reports cannot be read.",
    { hint: "Enter the identity provider's issuer and public client id in the settings above." });
  }
  if (text(theirs.issuer) !== ours.issuer || text(theirs.audience) !== ours.clientId) {
    return check("identity", "fail", `It expects issuer ${quoted(clip(text(theirs.issuer), MAX_TEXT))} and `
      + `client id ${quoted(clip(text(theirs.audience), MAX_TEXT))}; these settings say ${quoted(ours.issuer)} `
      + `and ${quoted(ours.clientId)}.`, { hint: "Make the settings above and its [identity] agree." });
  }
  if (!idp?.reachable) {
    return check("identity", "fail", `Your browser could not reach the identity provider: ${clip(text(idp?.detail), MAX_TEXT)}`,
      { hint: "Its discovery document must be reachable from browsers, with CORS for this portal." });
  }
  return check("identity", "pass", `Issuer ${quoted(ours.issuer)}, client id ${quoted(ours.clientId)}, reachable `
    + "from your browser.");
}

function auditCheck(health) {
  return health.audit === "ok"
    ? check("audit", "pass", "Its audit store is writable.")
    : check("audit", "fail", `Its audit store is ${quoted(health.audit ?? "not reported")}: it refuses every `
        + "request while it cannot write the audit log (fail closed).",
    { hint: "Check its audit store (SQLite file, PostgreSQL or DynamoDB table) and its permissions on it." });
}

function enabledCheck(health) {
  return health.enabled === true
    ? check("enabled", "pass", "Its kill switch is off.")
    : check("enabled", "fail", "Its kill switch is thrown (enabled = false): it refuses every grant.",
      { hint: "If that is not intended, set enabled = true in its config and restart it." });
}

function text(value) {
  return typeof value === "string" ? value : "";
}

// Uploads are unusable while the gatekeeper cannot reach its bucket: the first
// upload would fail with S3's error, so this is a failure, not a warning.
function storageCheck(health) {
  const bucket = text(health.bucket);
  const named = bucket ? `Bucket ${quoted(bucket)}` : "Its bucket";
  if (health.storage === "ok") {
    const region = text(health.region);
    return check("storage", "pass", `${named} answered${region ? ` in ${clip(region, 40)}` : ""}.`);
  }
  if (health.storage === "unreachable") {
    const problem = text(health.storage_problem);
    const [why, hint] = Object.hasOwn(STORAGE_PROBLEMS, problem)
      ? STORAGE_PROBLEMS[problem] : [`S3 answered ${quoted(problem || "nothing")}.`, STORAGE_HINT_OTHER];
    return check("storage", "fail", `${named} is unreachable from the gatekeeper: ${why} `
      + "Uploads and reports fail until it is.", { hint });
  }
  return check("storage", "warn", "It did not say whether it reaches its bucket (an older gatekeeper?).",
    { hint: "Deploy a gatekeeper release that reports its bucket in /v1/health." });
}

// What the gatekeeper reports against what the admin entered in these settings.
function matchCheck(id, what, reported, chosen) {
  const theirs = text(reported);
  if (!theirs) return null; // an older gatekeeper: storageCheck says so
  if (!chosen) return check(id, "info", `It uses ${what} ${quoted(theirs)}; these settings name none.`);
  if (theirs === chosen) return check(id, "pass", `${quoted(theirs)}.`);
  return check(id, "warn", `It uses ${what} ${quoted(theirs)}; these settings say ${quoted(chosen)}.`, {
    hint: `Your data is where the gatekeeper puts it: correct the ${what} in the settings above, `
      + "or the gatekeeper's configuration, so that they agree.",
  });
}

function encryptionCheck(health) {
  const encryption = text(health.encryption);
  if (!encryption) return check("encryption", "info", "Not reported.");
  let detail = `${clip(encryption, 40)}: ${Object.hasOwn(ENCRYPTION, encryption) ? ENCRYPTION[encryption] : "a mode this portal does not know."}`;
  const key = text(health.kms_key_id);
  if (key) detail += ` Key ${clip(key, 120)}.`;
  const uploads = text(health.upload_encryption);
  if (uploads) detail += ` Uploads through it ask for ${clip(uploads, 40)}.`;
  return check("encryption", "info", detail);
}

// The checklist, in the order the page shows it; the key checks after the
// active key's appear only when they have something to say.
// expected: {gatekeeperId, activeKid, nextKid, previousKids: [...], bucket, region}
// (bucket and region: what the admin entered in the settings; "" when none)
// clock: {portalSkew, browserSkew}: the gatekeeper's clock minus the portal's
// (null when the portal's could not be read) and minus the browser's, in seconds.
export function evaluate(health, expected, clock, { elapsedMs = null, idp = null } = {}) {
  const kids = trustedKids(health);
  return [
    reachableCheck(health, elapsedMs),
    protocolCheck(health),
    gatekeeperIdCheck(health, expected),
    activeKidCheck(kids, expected),
    nextKidCheck(kids, expected),
    previousKidsCheck(kids, expected),
    unknownKidsCheck(kids, expected),
    clockCheck(health, clock),
    auditCheck(health),
    enabledCheck(health),
    storageCheck(health),
    matchCheck("bucket", "bucket", health.bucket, expected.bucket || ""),
    matchCheck("region", "region", health.region, expected.region || ""),
    approvalsCheck(health, expected),
    identityCheck(health, expected, idp),
    encryptionCheck(health),
  ].filter(Boolean);
}

// The gatekeeper could not be asked: one failure, and nothing else known.
export function notReached(detail, hint) {
  return [check("reachable", "fail", detail, { hint }),
    ...["protocol", "gatekeeper_id", "active_kid", "clock", "audit", "enabled", "storage"].map(
      (id) => check(id, "skip", "The gatekeeper did not answer."))];
}

export function summarize(checks) {
  const fails = checks.filter((c) => c.status === "fail").length;
  const warns = checks.filter((c) => c.status === "warn").length;
  const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
  if (fails) {
    const also = warns ? `, ${plural(warns, "warning", "warnings")}` : "";
    return { status: "fail", text: `${plural(fails, "check failed", "checks failed")}${also}: see how to fix below.` };
  }
  if (warns) return { status: "warn", text: `Usable, with ${plural(warns, "warning", "warnings")}: see below.` };
  return { status: "pass", text: "All checks passed: the gatekeeper is ready for this portal." };
}
