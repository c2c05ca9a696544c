// A move's live progress bar (templates/moves/_progress.html): polls the portal's
// JSON (services.progress: objects and bytes done of total, rate, time left,
// failures with their reasons) and redraws. Every value is type-checked as read
// (lib/dom.js) and shown as text.

import { el, formatBytes, formatDuration, list, num, obj, str } from "../lib/dom.js";

const POLL_MS = 1000;
const STATES = { running: "Running", paused: "Paused", cancelled: "Cancelled", finished: "Finished" };

export function render(root, data) {
  const field = (name) => root.querySelector(`[data-field="${name}"]`);
  const objects = obj(data.objects), bytes = obj(data.bytes), tickets = obj(data.tickets);
  const total = num(bytes.total) ?? 0, done = num(bytes.done) ?? 0;
  field("state").textContent = STATES[str(data.state, 20)] || str(data.state, 20);
  field("bar").max = Math.max(total, 1);
  field("bar").value = total ? done : (str(data.state, 20) === "finished" ? 1 : 0);
  field("objects").textContent = `${num(objects.done) ?? 0} of ${num(objects.total) ?? 0}`;
  field("bytes").textContent = `${formatBytes(done)} of ${formatBytes(total)}`;
  field("rate").textContent = `${formatBytes(num(data.rate_bytes_per_s) ?? 0)}/s`;
  const left = num(data.seconds_left);
  field("left").textContent = left == null ? "—" : left < 60 ? `${Math.round(left)} s` : formatDuration(left);
  field("tickets").textContent = Object.entries(tickets).filter(([, n]) => num(n)).map(
    ([state, n]) => `${str(state, 20)} ${num(n)}`).join(" · ") || "—";
  const failures = list(data.failures, 100).map(obj);
  field("failures").replaceChildren(...(failures.length ? failures.map((f) => el("li", {},
    `#${str(f.ticket, 20)} ${str(f.key, 200)}: ${str(f.reason, 300)} (${str(f.code, 64)})`))
    : [el("li", { className: "muted" }, "None.")]));
  root.dataset.state = str(data.state, 20);
}

export async function poll(root, signal) {
  const response = await fetch(root.dataset.progressUrl, { credentials: "same-origin", cache: "no-store",
    headers: { Accept: "application/json" }, signal });
  if (!response.ok) return null;
  const data = await response.json().catch(() => null);
  if (data) render(root, data);
  return data;
}

// Polls until the move is over (finished or cancelled).
export function startProgress(root) {
  const tick = async () => {
    let data = null;
    try { data = await poll(root); } catch { /* the next poll tries again */ }
    const state = data ? str(data.state, 20) : "running";
    if (state === "running" || state === "paused") setTimeout(tick, POLL_MS);
  };
  setTimeout(tick, POLL_MS);
}
