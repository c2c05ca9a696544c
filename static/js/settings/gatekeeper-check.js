// The settings page's "Check the gatekeeper" panel. The admin's browser asks
// the tenant's gatekeeper for its health (GET /v1/health) and compares the
// answer with the settings the page carries in data attributes: the portal's
// servers never contact the gatekeeper. The CSP lets this page connect to the
// portal and to this tenant's gatekeeper only.
//
// Clocks: the gatekeeper's `time` and the portal's `Date` header (a HEAD of the
// settings page) are each measured against the browser's clock at the midpoint
// of their request, so the browser's own error cancels out.

import { evaluate, notReached, summarize } from "./checks.js";

const TIMEOUT_MS = 10_000;
const BADGES = { pass: "Pass", fail: "Fail", warn: "Warning", info: "Info", skip: "Not checked" };

const root = document.querySelector("[data-gatekeeper-check]");

function words(value) {
  return (value || "").split(/\s+/).filter(Boolean);
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

// The portal's clock minus the browser's, in ms; null if it cannot be read.
async function portalOffset(url, signal) {
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

class Unreached extends Error {
  constructor(detail, hint) {
    super(detail);
    this.hint = hint;
  }
}

async function health(gatekeeperUrl, signal, timedOut) {
  const url = `${gatekeeperUrl.replace(/\/+$/, "")}/v1/health`;
  const origin = new URL(url).origin;
  const before = Date.now();
  let response;
  try {
    response = await fetch(url, {
      mode: "cors", credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer", signal,
    });
  } catch (error) {
    if (error?.name === "AbortError" && !timedOut()) throw error; // a newer check took over
    if (timedOut()) {
      throw new Unreached(`The gatekeeper at ${origin} did not answer within ${TIMEOUT_MS / 1000} s.`,
        "Is it running, and reachable from your network?");
    }
    // A CORS refusal and a dead host look the same to a page (a TypeError): say both.
    throw new Unreached(`Could not reach the gatekeeper at ${origin}.`,
      `It is unreachable from your network, or it does not list this portal (${location.origin}) `
        + "in its allowed_origins.");
  }
  const after = Date.now();
  if (!response.ok) {
    throw new Unreached(`${url} answered HTTP ${response.status}.`,
      "Check the gatekeeper URL in the settings above: its /v1/health should answer 200.");
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!body || typeof body !== "object" || Array.isArray(body)) {
    throw new Unreached(`${url} did not answer with a gatekeeper's health report.`,
      "Check the gatekeeper URL in the settings above.");
  }
  return { body, elapsedMs: after - before, offsetMs: typeof body.time === "number"
    ? body.time * 1000 + 500 - (before + after) / 2 : null };
}

function renderCheck(item) {
  const li = element("li", `check check-${item.status}`);
  li.dataset.check = item.id;
  li.dataset.status = item.status;
  li.append(element("span", `badge badge-${item.status}`, BADGES[item.status]));
  const body = element("div", "check-body");
  body.append(element("strong", "check-title", item.title), element("p", "check-detail", item.detail));
  if (item.hint) {
    const hint = element("p", "check-hint", item.hint);
    if (item.anchor) {
      const link = element("a", null, "Show it");
      link.href = item.anchor;
      hint.append(" ", link);
    }
    body.append(hint);
  }
  li.append(body);
  return li;
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
      const [portal, answer] = await Promise.all([
        portalOffset(root.dataset.clockUrl || location.pathname, controller.signal),
        health(root.dataset.gatekeeperUrl, controller.signal, () => timedOut),
      ]);
      const browserSkew = answer.offsetMs == null ? null : answer.offsetMs / 1000;
      const portalSkew = answer.offsetMs == null || portal == null ? null : (answer.offsetMs - portal) / 1000;
      checks = evaluate(answer.body, expected, { portalSkew, browserSkew }, { elapsedMs: answer.elapsedMs });
    } catch (error) {
      if (!(error instanceof Unreached)) {
        if (current !== controller) return; // superseded by a newer check
        console.error(error);
        error = new Unreached(`The check itself failed: ${String(error?.message || error)}`, null);
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
    const when = element("span", "checked-at muted", ` Checked at ${new Date().toLocaleTimeString()}.`);
    summary.append(when);
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
