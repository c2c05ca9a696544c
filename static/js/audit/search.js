// Searching the customer's audit log at its gatekeeper (POST /v1/audit/search)
// with a short audit grant from the portal. The log never passes through the
// portal: the portal signs the grant, the browser asks the gatekeeper.

import { ApiError, postToGatekeeper, requestGrant } from "../lib/http.js";

// Audit grants live 120 s and are not single-use: one serves several searches.
// Renewed well before it runs out, measured on this browser's own clock (the
// portal's expires_at is on the portal's).
const GRANT_REUSE_MS = 60_000;
// One "load" follows `next` until it has enough entries; a page may be short or
// even empty without being the last (docs/protocol.md, section 9). This bounds
// the calls of one load; the user can always ask for more.
export const MAX_CALLS_PER_LOAD = 25;
const MAX_PAGE = 500; // the protocol's largest limit: more from one call is not believed

export class AuditLog {
  constructor({ grantUrl, csrfToken, gatekeeperUrl }) {
    this.grantUrl = grantUrl;
    this.csrfToken = csrfToken;
    this.gatekeeperUrl = gatekeeperUrl; // the page's own: the one its CSP allows
    this.grant = null;
    this.grantAt = 0;
  }

  async currentGrant(renew = false) {
    if (renew || !this.grant || Date.now() - this.grantAt > GRANT_REUSE_MS) {
      this.grant = null;
      const answer = await requestGrant(this.grantUrl, this.csrfToken);
      this.grant = answer.grant;
      this.grantAt = Date.now();
    }
    return this.grant;
  }

  // One call. Resolves to {entries, next}; throws an ApiError.
  async page(body, signal) {
    try {
      return await this.post(body, await this.currentGrant(), signal);
    } catch (error) {
      // An expired grant (a slow user, a sleeping laptop) is renewed once.
      if (error instanceof ApiError && error.code === "expired") {
        return this.post(body, await this.currentGrant(true), signal);
      }
      throw error;
    }
  }

  async post(body, grant, signal) {
    const answer = await postToGatekeeper(this.gatekeeperUrl, "/v1/audit/search", grant, body, signal);
    if (!Array.isArray(answer?.entries) || !(answer.next === null || typeof answer.next === "string")) {
      throw new ApiError("The gatekeeper's answer is malformed.", { source: "gatekeeper" });
    }
    return answer;
  }

  // Up to `want` entries from `cursor` on (null: the newest), following `next`.
  // onEntries(entries) is called as each page arrives, so rows show early.
  // Resolves to the cursor to continue from: null when the log has no more.
  async load(filters, { want, cursor = null, onEntries, signal }) {
    let got = 0;
    for (let calls = 0; calls < MAX_CALLS_PER_LOAD && got < want; calls += 1) {
      const body = { ...filters, limit: want - got };
      if (cursor) body.cursor = cursor;
      const { entries, next } = await this.page(body, signal);
      const page = entries.slice(0, MAX_PAGE);
      got += page.length;
      onEntries(page);
      cursor = next;
      if (!cursor) break;
    }
    return cursor;
  }
}
