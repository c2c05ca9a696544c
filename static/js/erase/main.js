// Erasing one ticket from the admin's browser (templates/tickets/erase.html): a
// single-use delete grant from the portal, the erase op at the gatekeeper (every
// version of every object under the ticket's prefix), and the gatekeeper's answer
// (keys, version ids, sizes, request id: no content) relayed to the portal, which
// keeps the receipt. An answer that says more is left (a page of versions, or some
// S3 refused) is followed by another round, with a fresh grant.

import { ApiError, csrfToken, postToGatekeeper, readJson } from "../lib/http.js";

const MAX_ROUNDS = 20;

async function postToPortal(url, csrf, payload) {
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrf, "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(payload),
    });
  } catch {
    throw new ApiError("Could not reach the portal.", { source: "portal" });
  }
  const body = await readJson(response);
  if (!response.ok) {
    const reason = typeof body?.message === "string" ? body.message : `HTTP ${response.status}`;
    throw new ApiError(`The portal refused: ${reason}`, { source: "portal", status: response.status, code: body?.error });
  }
  return body;
}

export async function eraseTicket(root, confirmation, say) {
  const csrf = root.dataset.csrfToken || csrfToken(root);
  for (let round = 1; round <= MAX_ROUNDS; round += 1) {
    const granted = await postToPortal(root.dataset.grantUrl, csrf, { confirm: confirmation });
    say(`Erasing at the gatekeeper (round ${round})…`);
    // The gatekeeper the page names (and its CSP allows), not one an answer names.
    const answer = await postToGatekeeper(root.dataset.gatekeeperUrl, "/v1/sign", granted.grant,
      { ops: [{ op: "delete", prefix: root.dataset.prefix }] });
    const recorded = await postToPortal(root.dataset.doneUrl, csrf, answer);
    if (recorded.state === "erased") return recorded;
    const failed = Array.isArray(recorded.failed) ? recorded.failed : [];
    if (failed.length) say(`${failed.length} version(s) refused by storage (${failed[0].code}); trying again…`);
  }
  throw new ApiError("The erasure did not finish; the portal keeps what was done. Try again later.", { source: "portal" });
}

const root = typeof document !== "undefined" && document.querySelector ? document.querySelector("[data-erase-root]") : null;
if (root) {
  const form = root.querySelector("[data-erase-form]");
  const status = root.querySelector("[data-erase-status]");
  const say = (text) => { status.textContent = text; };
  form?.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      await eraseTicket(root, form.elements.confirm.value, say);
      say("Erased. The receipt is ready.");
      form.hidden = true;
      root.querySelector("[data-erase-receipt]").hidden = false;
    } catch (error) {
      say(error.hint ? `${error.message} ${error.hint}` : error.message);
      button.disabled = false;
    }
  });
}
