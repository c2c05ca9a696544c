// Talking to the portal (for a grant), the tenant's gatekeeper (for presigned
// URLs) and the tenant's storage (for the objects). Every failure becomes an
// ApiError whose message can be shown to the user as it is.

export class ApiError extends Error {
  constructor(message, { source, status = null, code = null, hint = null } = {}) {
    super(message);
    this.source = source; // "portal" | "gatekeeper" | "storage"
    this.status = status;
    this.code = code;
    this.hint = hint;
  }
}

// What a help-desk person can do about each refusal. The gatekeeper's own
// code and message are always shown too, verbatim.
const TRUST = "The customer's gatekeeper does not accept this portal's grants. Ask the tenant admin to check its trusted keys and settings.";
const CLOCK = "The portal's and the gatekeeper's clocks may disagree. Try again in a minute.";
const GATEKEEPER_HINTS = {
  address_denied: "The customer's access policy does not allow the address you are connecting from.",
  country_denied: "The customer's access policy does not allow the country you are connecting from.",
  kill_switch: "The customer has suspended all access to its report data.",
  expired: "The access grant expired. Reload the page to get a new one.",
  grant_reused: "The access grant was already used. Reload the page to get a new one.",
  revoked: "The customer has revoked access for this account.",
  audit_unavailable: "The customer's audit log cannot be written, so its gatekeeper refuses everything (fail closed).",
  origin_not_allowed: "The customer's gatekeeper does not list this portal's origin.",
  invalid_grant: TRUST, unknown_kid: TRUST, bad_signature: TRUST, wrong_audience: TRUST,
  wrong_issuer: TRUST, algorithm_refused: TRUST,
  not_yet_valid: CLOCK, too_long_lived: CLOCK,
};

async function readJson(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

function text(value) {
  return typeof value === "string" ? value : null;
}

export async function requestGrant(grantUrl, csrfToken) {
  let response;
  try {
    response = await fetch(grantUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken, Accept: "application/json" },
    });
  } catch {
    throw new ApiError("Could not reach the portal to get an access grant.", { source: "portal" });
  }
  const body = await readJson(response);
  if (!response.ok) {
    // DRF answers {"detail": ...}; ours {"error", "message"}.
    const reason = text(body?.message) || text(body?.detail) || `HTTP ${response.status}`;
    throw new ApiError(`The portal did not give an access grant: ${reason}`, {
      source: "portal", status: response.status, code: text(body?.error) || text(body?.code),
    });
  }
  if (!text(body?.grant)) {
    throw new ApiError("The portal's grant answer is malformed.", { source: "portal" });
  }
  return body;
}

export function gatekeeperRefusal(status, body, requestId = null) {
  const code = text(body?.error) || `http_${status}`;
  const message = text(body?.message) || "no reason given";
  // The request id finds the refusal in the customer's audit log (readable
  // only if the gatekeeper exposes the header to CORS).
  const hints = [Object.hasOwn(GATEKEEPER_HINTS, code) && GATEKEEPER_HINTS[code],
    requestId && `Gatekeeper request id: ${requestId.slice(0, 100)}.`];
  return new ApiError(`The gatekeeper refused: ${message} (${code})`, {
    source: "gatekeeper", status, code, hint: hints.filter(Boolean).join(" ") || null,
  });
}

// Every POST to a gatekeeper (sign, audit search): the JSON answer, or an
// ApiError that says what happened. An abort is passed through untouched.
export async function postToGatekeeper(gatekeeperUrl, path, grant, payload, signal) {
  const url = gatekeeperUrl.replace(/\/+$/, "") + path;
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      mode: "cors",
      credentials: "omit", // the grant is the only credential the gatekeeper needs
      referrerPolicy: "no-referrer",
      cache: "no-store",
      headers: { Authorization: `Bearer ${grant}`, "Content-Type": "application/json" },
      body: JSON.stringify(payload),
      signal,
    });
  } catch (error) {
    if (error?.name === "AbortError") throw error;
    // A CORS refusal and a dead host look the same to a page, so say both.
    throw new ApiError(
      `Could not reach the customer's gatekeeper at ${new URL(url).origin}.`,
      { source: "gatekeeper", hint: "It may be down, or it may not allow this portal's origin (CORS)." },
    );
  }
  const body = await readJson(response);
  if (!response.ok) throw gatekeeperRefusal(response.status, body, response.headers.get("X-Request-Id"));
  return body;
}

// One /v1/sign call for the whole ticket: the gatekeeper audits and decides
// the batch as a whole, and one round trip keeps the page fast.
export async function signAll(gatekeeperUrl, grant, ops) {
  const body = await postToGatekeeper(gatekeeperUrl, "/v1/sign", grant, { ops });
  if (!Array.isArray(body?.results) || body.results.length !== ops.length) {
    throw new ApiError("The gatekeeper's answer is malformed.", { source: "gatekeeper" });
  }
  return body.results;
}

// What a help-desk person can do about storage's own refusals (S3's error
// codes, from the XML body of the answer). The code and message are shown too.
const STORAGE_HINTS = {
  AccessDenied: "The customer's storage did not accept the signed link: it may have expired (reload the page), or the gatekeeper's credentials may not allow reading this file. Ask the tenant admin.",
  RequestTimeTooSkewed: "The customer's gatekeeper signed with a clock that differs too much from its storage's. Ask the tenant admin to check the gatekeeper's clock.",
  NoSuchKey: "The file is not in the customer's storage: it was deleted, or never uploaded.",
  NoSuchBucket: "The customer's bucket does not exist. Ask the tenant admin to check the storage settings.",
  ExpiredToken: "The gatekeeper's storage credentials have expired. Ask the tenant admin to check them.",
  InvalidAccessKeyId: "The customer's storage does not know the gatekeeper's credentials. Ask the tenant admin to check them.",
  SignatureDoesNotMatch: "The customer's storage does not accept the gatekeeper's signature. Ask the tenant admin to check its credentials.",
  "KMS.DisabledException": "The customer's encryption key is disabled, so its files cannot be read.",
  SlowDown: "The customer's storage is busy. Try again in a minute.",
  ServiceUnavailable: "The customer's storage is unavailable. Try again in a minute.",
  InternalError: "The customer's storage failed. Try again in a minute.",
};

export function storageHint(code) {
  return typeof code === "string" && Object.hasOwn(STORAGE_HINTS, code) ? STORAGE_HINTS[code] : null;
}

const ERROR_BODY_MAX = 64 * 1024;
const ERROR_CODE = /^[A-Za-z0-9.]{1,100}$/;

// S3's error body: <Error><Code>AccessDenied</Code><Message>…</Message>
// <RequestId>…</RequestId></Error>. Parsed as XML (DOMParser never runs
// scripts, and only the elements' text is kept); anything else gives nulls.
export function parseStorageError(body) {
  const none = { code: null, message: null, requestId: null };
  if (typeof body !== "string" || !body.trimStart().startsWith("<") || typeof DOMParser === "undefined") return none;
  const doc = new DOMParser().parseFromString(body.slice(0, ERROR_BODY_MAX), "application/xml");
  const error = doc.documentElement;
  if (!error || error.localName !== "Error") return none;
  const field = (name, max) => {
    const node = [...error.children].find((c) => c.localName === name);
    const value = node ? node.textContent.trim().slice(0, max) : "";
    return value || null;
  };
  const code = field("Code", 200);
  return {
    code: code && ERROR_CODE.test(code) ? code : null,
    message: field("Message", 300),
    requestId: field("RequestId", 100) || field("RequestID", 100),
  };
}

export async function storageRefusal(response) {
  let body = null;
  try {
    body = await response.text();
  } catch {
    // No readable body: the status alone says what happened.
  }
  const { code, message, requestId } = parseStorageError(body);
  const hints = [storageHint(code), requestId && `Storage request id: ${requestId}.`].filter(Boolean);
  return new ApiError(code
    ? `The customer's storage refused: ${message || "no reason given"} (${code})`
    : `The customer's storage refused (HTTP ${response.status}).`, {
    source: "storage", status: response.status, code, hint: hints.join(" ") || null,
  });
}

// Fetch one object through its presigned GET. No cookies, no referrer: the URL
// itself is the (short-lived) credential and must not leak anywhere else.
export async function fetchObject(url) {
  let response;
  try {
    response = await fetch(url, { credentials: "omit", referrerPolicy: "no-referrer", cache: "no-store" });
  } catch {
    throw new ApiError("Could not reach the customer's storage.", { source: "storage" });
  }
  if (!response.ok) throw await storageRefusal(response);
  return new Uint8Array(await response.arrayBuffer());
}

// SHA-256 as lowercase hex, or null where WebCrypto is unavailable (it needs a
// secure context: https, or localhost in development).
export async function sha256Hex(bytes) {
  if (!globalThis.crypto?.subtle) return null;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}
