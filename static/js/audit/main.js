// The audit log page: read the filters, get an audit grant from the portal,
// search the log at the tenant's gatekeeper, render the entries newest first,
// and follow `next` on "Load more". The page's HTML holds no entry; the CSP lets
// it talk to this tenant's gatekeeper and to the portal, nothing else.

import { showBanner } from "../lib/dom.js";
import { csrfToken } from "../lib/http.js";
import { downloadCsv } from "./csv.js";
import { LookupError, addressFilter, resolveSubject, ticketFilter } from "./lookup.js";
import { AuditLog } from "./search.js";
import { row } from "./table.js";

// Past this many rows the page stops offering more: narrower filters serve better
// than a table the browser can hardly scroll.
const MAX_ROWS = 20_000;
const DEFAULT_LIMIT = 100;
const TEXT_FILTERS = ["op", "outcome", "client_ip", "sub", "key_prefix"];
const TIME_FILTERS = ["since", "until"];

const root = document.querySelector("[data-audit-root]");
const form = root.querySelector("form[data-testid=audit-filters]");
const table = root.querySelector("[data-testid=audit-table]");
const tbody = table.querySelector("tbody");
const status = root.querySelector("[data-testid=audit-status]");
const banner = root.querySelector("[data-testid=error-banner]");
const moreButton = root.querySelector("[data-action=more]");
const exportButton = root.querySelector("[data-action=export]");

const log = new AuditLog({
  grantUrl: root.dataset.grantUrl, csrfToken: csrfToken(root), gatekeeperUrl: root.dataset.gatekeeperUrl,
});

// The current search: its filters, what is loaded, where to continue.
const state = { filters: null, entries: [], next: null, loading: null, run: 0 };

class FilterError extends Error {}

// A datetime-local value ("2026-11-23T08:25" or with seconds) is local time;
// the gatekeeper takes epoch seconds.
function epochSeconds(name, value) {
  const date = new Date(value);
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(value) || Number.isNaN(date.getTime())) {
    throw new FilterError(`“${name}” is not a valid date and time.`);
  }
  return Math.floor(date.getTime() / 1000);
}

// The members and agent tokens, as the page lists them (vendor-held names).
const people = [...root.querySelectorAll("#audit-people option")].map((o) => ({
  sub: o.dataset.sub, names: [o.value, o.dataset.username],
}));

// A ticket number becomes its prefix through the portal (which holds the numbers).
async function prefixOfNumber(number) {
  let body = null;
  try {
    const response = await fetch(`${root.dataset.ticketsUrl}?number=${number}`,
      { credentials: "same-origin", headers: { Accept: "application/json" } });
    body = response.ok ? await response.json() : null;
  } catch {
    throw new FilterError("Could not reach the portal to find that ticket number.");
  }
  const prefix = body?.results?.[0]?.prefix;
  if (typeof prefix !== "string") throw new FilterError(`No ticket #${number}.`);
  return prefix;
}

async function readFilters() {
  const data = new FormData(form);
  const filters = {};
  for (const name of TEXT_FILTERS) {
    const value = String(data.get(name) ?? "").trim();
    if (value) filters[name] = value;
  }
  try {
    if (filters.sub) filters.sub = resolveSubject(filters.sub, people);
  } catch (error) {
    if (error instanceof LookupError) throw new FilterError(error.message);
    throw error;
  }
  if (filters.client_ip) Object.assign(filters, addressFilter(filters.client_ip));
  if (filters.client_net) delete filters.client_ip;
  if (filters.key_prefix) {
    const ticket = ticketFilter(filters.key_prefix);
    filters.key_prefix = ticket.number != null ? await prefixOfNumber(ticket.number) : ticket.prefix;
  }
  for (const name of TIME_FILTERS) {
    const value = String(data.get(name) ?? "");
    if (value) filters[name] = epochSeconds(name === "since" ? "From" : "Until", value);
  }
  if (filters.since != null && filters.until != null && filters.since > filters.until) {
    throw new FilterError("“From” must not be after “Until”.");
  }
  return filters;
}

function readLimit() {
  const limit = Number(form.elements.limit.value);
  return Number.isInteger(limit) && limit >= 1 && limit <= 500 ? limit : DEFAULT_LIMIT;
}

// The filters live in the address too, so a search can be reloaded and shared.
function filtersToAddress() {
  const params = new URLSearchParams();
  for (const [name, value] of new FormData(form)) {
    if (value && !(name === "limit" && Number(value) === DEFAULT_LIMIT)) params.set(name, value);
  }
  const query = params.toString();
  history.replaceState(null, "", query ? `?${query}` : location.pathname);
}

function filtersFromAddress() {
  const params = new URLSearchParams(location.search);
  for (const name of [...TEXT_FILTERS, ...TIME_FILTERS, "limit"]) {
    const field = form.elements[name];
    if (field && params.has(name)) field.value = params.get(name).slice(0, 1024);
  }
}

function setStatus(text, kind) {
  status.textContent = text;
  status.className = `state state-${kind}`;
}

function describe() {
  const n = state.entries.length;
  const shown = `${n.toLocaleString()} ${n === 1 ? "entry" : "entries"}, newest first`;
  if (state.next && n >= MAX_ROWS) return `${shown}. Narrow the filters to see older entries.`;
  if (state.next) return `${shown}. Older entries can be loaded.`;
  return n ? `${shown}. That is every entry matching these filters.` : "No entries match these filters.";
}

function settle() {
  const loading = Boolean(state.loading);
  table.setAttribute("aria-busy", String(loading));
  moreButton.disabled = loading;
  moreButton.hidden = loading || !state.next || state.entries.length >= MAX_ROWS;
  exportButton.disabled = loading || !state.entries.length;
  root.dataset.loaded = String(!loading);
}

async function load(want) {
  const run = ++state.run; // a newer search makes this one's results stale
  state.loading?.abort();
  const controller = new AbortController();
  state.loading = controller;
  banner.hidden = true;
  setStatus(state.entries.length ? "Loading older entries…" : "Loading…", "loading");
  settle();
  try {
    const next = await log.load(state.filters, {
      want,
      cursor: state.next,
      signal: controller.signal,
      onEntries: (entries) => {
        if (run !== state.run) return;
        state.entries.push(...entries);
        tbody.append(...entries.map(row));
      },
    });
    if (run !== state.run) return;
    state.next = next;
    setStatus(describe(), "ready");
  } catch (error) {
    if (run !== state.run || error?.name === "AbortError") return;
    console.error(error);
    // The gatekeeper's own code and message, verbatim (see lib/http.js, gatekeeperRefusal).
    showBanner(banner, String(error?.message || error), [error?.hint]);
    setStatus(state.entries.length ? `${describe()} Loading more failed: see the message above.`
      : "Not loaded: see the message above.", "error");
  } finally {
    if (run === state.run) {
      state.loading = null;
      settle();
    }
  }
}

function refuseFilters(message) {
  state.run += 1; // whatever was loading belongs to other filters
  state.loading?.abort();
  Object.assign(state, { entries: [], next: null, loading: null });
  tbody.replaceChildren();
  banner.hidden = true;
  if (message) showBanner(banner, message);
  setStatus("Not searched: check the filters.", "error");
  settle();
}

async function search() {
  root.dataset.loaded = "false"; // a ticket number may be looked up first
  if (!form.checkValidity()) {
    form.reportValidity();
    refuseFilters(null);
    return;
  }
  let filters;
  try {
    filters = await readFilters();
  } catch (error) {
    if (!(error instanceof FilterError)) throw error;
    refuseFilters(error.message);
    return;
  }
  filtersToAddress();
  Object.assign(state, { filters, entries: [], next: null });
  tbody.replaceChildren();
  load(readLimit());
}

function exportCsv() {
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\..*$/, "Z");
  const tenant = (root.dataset.tenant || "tenant").replace(/[^A-Za-z0-9-]/g, "");
  downloadCsv(state.entries, `audit-${tenant}-${stamp}.csv`);
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  search();
});
root.querySelector("[data-action=clear]").addEventListener("click", () => {
  form.reset();
  search();
});
moreButton.addEventListener("click", () => {
  if (state.next && !state.loading) load(readLimit());
});
exportButton.addEventListener("click", exportCsv);

filtersFromAddress();
search();
