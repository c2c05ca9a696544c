// Talking to the tenant's gatekeeper for the ticket's presigned URLs (one
// /v1/sign batch) and to the tenant's storage for the objects. Every failure
// becomes an ApiError (lib/http.js) whose message can be shown to the user as it is.

import { ApiError, TooLargeError, postToGatekeeper, readLimited } from "./http.js";

// One /v1/sign call for the whole ticket: the gatekeeper audits and decides
// the batch as a whole, and one round trip keeps the page fast.
// `approval`: a vendor support grant's X-Approval (lib/http.js); else none.
export async function signAll(gatekeeperUrl, grant, ops, approval = null) {
  const body = await postToGatekeeper(gatekeeperUrl, "/v1/sign", grant, { ops }, undefined, approval);
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
    // Bounded like the objects: an error page is read up to 64 KiB, no further.
    body = new TextDecoder().decode(await readLimited(response, ERROR_BODY_MAX));
  } catch {
    // No readable body, or one too long to be S3's: the status alone says what happened.
  }
  const { code, message, requestId } = parseStorageError(body);
  const hints = [storageHint(code), requestId && `Storage request id: ${requestId}.`].filter(Boolean);
  return new ApiError(code
    ? `The customer's storage refused: ${message || "no reason given"} (${code})`
    : `The customer's storage refused (HTTP ${response.status}).`, {
    source: "storage", status: response.status, code, hint: hints.join(" ") || null,
  });
}

// Fetch one object through its presigned GET, at most `limit` bytes (a body
// running past it is stopped: TooLargeError, from lib/http.js). No cookies, no
// referrer: the URL itself is the (short-lived) credential and must not leak
// anywhere else.
export async function fetchObject(url, limit) {
  let response;
  try {
    response = await fetch(url, { credentials: "omit", referrerPolicy: "no-referrer", cache: "no-store" });
  } catch {
    throw new ApiError("Could not reach the customer's storage.", { source: "storage" });
  }
  if (!response.ok) throw await storageRefusal(response);
  try {
    return await readLimited(response, limit);
  } catch (error) {
    if (error instanceof TooLargeError) throw error;
    throw new ApiError("The customer's storage stopped sending the file.", { source: "storage" });
  }
}

// SHA-256 as lowercase hex, or null where WebCrypto is unavailable (it needs a
// secure context: https, or localhost in development).
export async function sha256Hex(bytes) {
  if (!globalThis.crypto?.subtle) return null;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}
