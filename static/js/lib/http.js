// The pages' conversations with the portal (a grant, its clock) and with the
// tenant's gatekeeper (POSTs with a grant, the health report). Every failure
// becomes an ApiError whose message and hint can be shown to the user as they
// are; an abort is passed through untouched.

import { gatekeeperHint } from "./gatekeeper-hints.js";
import { forgetIdentity, identityConfig, identityToken, takesIdentity } from "./identity.js";

export class ApiError extends Error {
  constructor(message, { source, status = null, code = null, hint = null } = {}) {
    super(message);
    this.source = source; // "portal" | "gatekeeper" | "storage"
    this.status = status;
    this.code = code;
    this.hint = hint;
  }
}

export async function readJson(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

const text = (value) => (typeof value === "string" ? value : null);
const endpoint = (baseUrl, path) => baseUrl.replace(/\/+$/, "") + path;
const isAbort = (error) => error?.name === "AbortError";

// The page's own token (a data attribute) or else Django's csrftoken cookie.
export function csrfToken(root, cookies = document.cookie) {
  const cookie = cookies.split("; ").find((c) => c.startsWith("csrftoken="));
  return root.dataset.csrfToken || (cookie ? decodeURIComponent(cookie.slice(10)) : "");
}

// --- the portal ---------------------------------------------------------------

export async function requestGrant(grantUrl, csrf) {
  let response;
  try {
    response = await fetch(grantUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrf, Accept: "application/json" },
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

// The portal's clock minus the browser's, in ms, from the Date header of a HEAD
// measured at the request's midpoint; null if it cannot be read.
export async function portalClockOffset(url, signal) {
  try {
    const before = Date.now();
    const response = await fetch(url, { method: "HEAD", credentials: "same-origin", cache: "no-store", signal });
    const after = Date.now();
    const date = Date.parse(response.headers.get("Date") || "");
    // The header is cut to the whole second: +500 ms is the best guess.
    return Number.isNaN(date) ? null : date + 500 - (before + after) / 2;
  } catch {
    return null;
  }
}

// --- the gatekeeper -----------------------------------------------------------------

export function gatekeeperRefusal(status, body, requestId = null) {
  const code = text(body?.error) || `http_${status}`;
  const message = text(body?.message) || "no reason given";
  // The request id finds the refusal in the customer's audit log (readable
  // only if the gatekeeper exposes the header to CORS).
  const hints = [gatekeeperHint(code), requestId && `Gatekeeper request id: ${requestId.slice(0, 100)}.`];
  return new ApiError(`The gatekeeper refused: ${message} (${code})`, {
    source: "gatekeeper", status, code, hint: hints.filter(Boolean).join(" ") || null,
  });
}

// Every POST to a gatekeeper (sign, audit search): the JSON answer, or an
// ApiError that says what happened.
// `approval`: the customer's approval of a vendor support grant (X-Approval,
// docs/protocol.md §1a), as the portal's grant answer carries it; else none.
export async function postToGatekeeper(gatekeeperUrl, path, grant, payload, signal, approval = null) {
  const url = endpoint(gatekeeperUrl, path);
  const headers = { Authorization: `Bearer ${grant}`, "Content-Type": "application/json" };
  if (typeof approval === "string" && approval) headers["X-Approval"] = approval;
  // The person's ID token (lib/identity.js), only to a gatekeeper the page names as
  // taking it (takesIdentity); any other, the vendor-hosted one above all, gets none
  // and starts no sign-in.
  const identityHere = takesIdentity(url);
  if (identityHere) {
    let identity;
    try {
      identity = await identityToken();
    } catch (error) {
      throw new ApiError(`Could not sign in at your organisation's identity provider: ${error.message}`,
        { source: "gatekeeper", code: "identity_required" });
    }
    if (identity) headers["X-Identity-Token"] = identity;
  }
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      mode: "cors",
      credentials: "omit", // the grant is the only credential the gatekeeper needs
      referrerPolicy: "no-referrer",
      cache: "no-store",
      headers,
      body: JSON.stringify(payload),
      signal,
    });
  } catch (error) {
    if (isAbort(error)) throw error;
    // A CORS refusal and a dead host look the same to a page, so say both.
    throw new ApiError(
      `Could not reach the customer's gatekeeper at ${new URL(url).origin}.`,
      { source: "gatekeeper", hint: "It may be down, or it may not allow this portal's origin (CORS)." },
    );
  }
  const body = await readJson(response);
  if (!response.ok) {
    if (/^identity_(expired|invalid|mismatch)$/.test(text(body?.error) || "")) forgetIdentity();
    const refusal = gatekeeperRefusal(response.status, body, response.headers.get("X-Request-Id"));
    if (refusal.code === "identity_required" && !identityHere && identityConfig()) {
      refusal.hint = "The portal does not know that this gatekeeper asks who you are, so the page sent it no "
        + "sign-in: a tenant admin connects its location again (Settings, Storage locations) so that its "
        + "health is recorded.";
    }
    throw refusal;
  }
  return body;
}

// GET /v1/health (no credentials). Resolves to {body, elapsedMs, offsetMs}:
// offsetMs is the gatekeeper's clock minus the browser's, measured at the
// request's midpoint (null if it sent no time). The caller aborts `signal` on a
// timeout and says so through timedOut(); a plain abort is passed through.
export async function fetchHealth(gatekeeperUrl, { signal, timeoutMs, timedOut = () => false }) {
  const url = endpoint(gatekeeperUrl, "/v1/health");
  const origin = new URL(url).origin;
  const before = Date.now();
  let response;
  try {
    response = await fetch(url, {
      mode: "cors", credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer", signal,
    });
  } catch (error) {
    if (isAbort(error) && !timedOut()) throw error; // a newer check took over
    if (timedOut()) {
      throw new ApiError(`The gatekeeper at ${origin} did not answer within ${timeoutMs / 1000} s.`,
        { source: "gatekeeper", hint: "Is it running, and reachable from your network?" });
    }
    // A CORS refusal and a dead host look the same to a page (a TypeError): say both.
    throw new ApiError(`Could not reach the gatekeeper at ${origin}.`, { source: "gatekeeper",
      hint: `It is unreachable from your network, or it does not list this portal (${location.origin}) `
        + "in its allowed_origins." });
  }
  const after = Date.now();
  if (!response.ok) {
    throw new ApiError(`${url} answered HTTP ${response.status}.`, { source: "gatekeeper", status: response.status,
      hint: "Check the gatekeeper URL in the settings above: its /v1/health should answer 200." });
  }
  const body = await readJson(response);
  if (!body || typeof body !== "object" || Array.isArray(body)) {
    throw new ApiError(`${url} did not answer with a gatekeeper's health report.`,
      { source: "gatekeeper", hint: "Check the gatekeeper URL in the settings above." });
  }
  return { body, elapsedMs: after - before, offsetMs: typeof body.time === "number"
    ? body.time * 1000 + 500 - (before + after) / 2 : null };
}

// --- bounded downloads ------------------------------------------------------------

// A body longer than the reader would take: `received` is what came before the
// download was stopped (or the Content-Length storage announced), `limit` the bound.
export class TooLargeError extends Error {
  constructor(limit, received, announced = false) {
    super(announced ? `storage announced ${received} bytes, over the limit of ${limit}`
      : `storage sent more than the limit of ${limit} bytes; the download was stopped`);
    this.name = "TooLargeError";
    this.limit = limit;
    this.received = received;
    this.announced = announced;
  }
}

// The body of `response`, at most `limit` bytes. A Content-Length over the
// limit is refused before anything is read; otherwise the body is read chunk by
// chunk and the stream cancelled (the rest is never downloaded) as soon as it
// runs past the limit. Both throw TooLargeError.
export async function readLimited(response, limit) {
  const announced = Number(response.headers.get("Content-Length") ?? NaN);
  if (Number.isFinite(announced) && announced > limit) {
    await response.body?.cancel().catch(() => {});
    throw new TooLargeError(limit, announced, true);
  }
  if (!response.body) return new Uint8Array(0);
  const reader = response.body.getReader();
  const chunks = [];
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    received += value.byteLength;
    if (received > limit) {
      await reader.cancel().catch(() => {});
      throw new TooLargeError(limit, received);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(received);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}
