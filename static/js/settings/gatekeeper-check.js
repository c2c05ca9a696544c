// The settings page's "Check the gatekeeper" panel. The admin's browser asks
// the tenant's gatekeeper for its health (GET /v1/health) and compares the
// answer with the settings the page carries in data attributes: the portal's
// servers never contact the gatekeeper. The CSP lets this page connect to the
// portal and to this tenant's gatekeeper only.
//
// Clocks: the gatekeeper's `time` and the portal's `Date` header (a HEAD of the
// settings page) are each measured against the browser's clock at the midpoint
// of their request, so the browser's own error cancels out.

import { el } from "../lib/dom.js";
import { ApiError, fetchHealth, portalClockOffset } from "../lib/http.js";
import { identityConfig, reachIdp } from "../lib/identity.js";
import { evaluate, notReached, summarize } from "./checks.js";

const TIMEOUT_MS = 10_000;
const BADGES = { pass: "Pass", fail: "Fail", warn: "Warning", info: "Info", skip: "Not checked" };

const root = document.querySelector("[data-gatekeeper-check]");

function words(value) {
  return (value || "").split(/\s+/).filter(Boolean);
}

function renderCheck(item) {
  const link = item.hint && item.anchor ? el("a", { href: item.anchor }, "Show it") : null;
  return el("li", { className: `check check-${item.status}`, "data-check": item.id, "data-status": item.status },
    el("span", { className: `badge badge-${item.status}` }, BADGES[item.status]),
    el("div", { className: "check-body" },
      el("strong", { className: "check-title" }, item.title),
      el("p", { className: "check-detail" }, item.detail),
      item.hint && el("p", { className: "check-hint" }, item.hint, link && " ", link)));
}

// The key rotation's "switch" button waits until the gatekeeper trusts the next key.
function allowSwitch(trusted) {
  const button = document.querySelector("[data-action=activate-next-key]");
  if (!button) return;
  button.disabled = !trusted;
  button.title = trusted ? "" : "The gatekeeper does not trust this key yet: see the check above";
}

function start() {
  const list = root.querySelector("[data-testid=checklist]");
  const summary = root.querySelector("[data-testid=check-summary]");
  const button = root.querySelector("[data-action=check]");
  const expected = {
    gatekeeperId: root.dataset.gatekeeperId || "",
    activeKid: root.dataset.activeKid || "",
    nextKid: root.dataset.nextKid || "",
    previousKids: words(root.dataset.previousKids),
    bucket: root.dataset.bucket || "",
    region: root.dataset.region || "",
    approverIds: words(root.dataset.approverIds),
    idp: identityConfig(), // {issuer, clientId} from these settings, or null
  };
  let current = null;

  async function check() {
    current?.abort();
    const controller = new AbortController();
    current = controller;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, TIMEOUT_MS);
    root.dataset.state = "checking";
    button.disabled = true;
    list.setAttribute("aria-busy", "true");
    summary.className = "check-summary state-loading";
    summary.textContent = "Checking…";
    let checks;
    try {
      const [portal, answer, idp] = await Promise.all([
        portalClockOffset(root.dataset.clockUrl || location.pathname, controller.signal),
        fetchHealth(root.dataset.gatekeeperUrl, { signal: controller.signal, timeoutMs: TIMEOUT_MS,
          timedOut: () => timedOut }),
        // The IdP as the pages will reach it: from this browser, never from the portal.
        expected.idp && reachIdp(expected.idp.issuer, controller.signal),
      ]);
      const browserSkew = answer.offsetMs == null ? null : answer.offsetMs / 1000;
      const portalSkew = answer.offsetMs == null || portal == null ? null : (answer.offsetMs - portal) / 1000;
      checks = evaluate(answer.body, expected, { portalSkew, browserSkew }, { elapsedMs: answer.elapsedMs, idp });
    } catch (error) {
      if (!(error instanceof ApiError)) {
        if (current !== controller) return; // superseded by a newer check
        console.error(error);
        error = new ApiError(`The check itself failed: ${String(error?.message || error)}`);
      }
      checks = notReached(error.message, error.hint);
    } finally {
      clearTimeout(timer);
    }
    if (current !== controller) return;
    current = null;
    list.replaceChildren(...checks.map(renderCheck));
    const verdict = summarize(checks);
    summary.className = `check-summary state-${verdict.status}`;
    summary.textContent = verdict.text;
    summary.append(el("span", { className: "checked-at muted" }, ` Checked at ${new Date().toLocaleTimeString()}.`));
    list.setAttribute("aria-busy", "false");
    button.disabled = false;
    root.dataset.state = "done";
    root.dataset.verdict = verdict.status;
    allowSwitch(checks.some((item) => item.id === "next_kid" && item.status === "pass"));
  }

  button.addEventListener("click", check);
  check();
}

if (root) start();
