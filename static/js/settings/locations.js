// The settings page's storage locations: "Connect" asks a location's gatekeeper
// for its health (GET /v1/health, from this browser: the portal never contacts a
// gatekeeper) and posts the answer to the portal, which checks it is that
// location's gatekeeper and records the bucket, region, storage state and
// encryption it reports. The page then reloads to show them (and any mismatch
// with what was chosen). The CSP lets this page connect to each location's gatekeeper.

import { csrfToken, fetchHealth, readJson } from "../lib/http.js";

const TIMEOUT_MS = 10_000;
const root = document.querySelector("[data-locations]");

async function connect(row, status) {
  status.textContent = "Asking the gatekeeper…";
  const controller = new AbortController();
  let late = false;
  const timer = setTimeout(() => { late = true; controller.abort(); }, TIMEOUT_MS);
  let health;
  try {
    ({ body: health } = await fetchHealth(row.dataset.gatekeeperUrl,
      { signal: controller.signal, timeoutMs: TIMEOUT_MS, timedOut: () => late }));
  } catch (error) {
    status.textContent = [error.message, error.hint].filter(Boolean).join(" ");
    row.dataset.connect = "failed";
    return;
  } finally {
    clearTimeout(timer);
  }
  const response = await fetch(row.dataset.healthUrl, {
    method: "POST", credentials: "same-origin",
    headers: { "X-CSRFToken": csrfToken(root), "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(health),
  });
  const answer = await readJson(response);
  if (!response.ok) {
    status.textContent = `Not recorded: ${answer?.message || `HTTP ${response.status}`}`;
    row.dataset.connect = "failed";
    return;
  }
  row.dataset.connect = "recorded";
  window.location.reload();
}

if (root) {
  for (const row of root.querySelectorAll("[data-location-row][data-health-url]")) {
    const button = row.querySelector("[data-action=connect-location]");
    const status = row.querySelector("[data-testid=location-connect-status]");
    button.disabled = false;
    button.addEventListener("click", () => {
      button.disabled = true;
      connect(row, status).finally(() => { button.disabled = false; });
    });
  }
}
