// The ticket list: each row's subject, requester and machine come from the
// ticket's summary.json in the tenant's storage, read here in the browser. One
// summary grant from the portal for every ticket on the page (protocol 2, feature `prefixes`: a
// scope listing their prefixes), one /v1/sign call at the tenant's gatekeeper,
// then one small fetch per summary, checked against the manifest's SHA-256. The
// rows themselves (number, time, status, ...) are the vendor's metadata and are
// on the page already.

import { obj, showBanner, str } from "../lib/dom.js";
import { ApiError, csrfToken, readJson } from "../lib/http.js";
import { fetchObject, sha256Hex, signAll } from "../lib/storage.js";

const SUMMARY_LIMIT = 16 * 1024; // a summary is a few hundred bytes; the manifest says exactly how many

const table = document.querySelector("[data-ticket-list]");
const banner = document.querySelector("[data-testid=summary-banner]");
const search = document.querySelector("[data-testid=summary-search]");
const scope = document.querySelector("[data-testid=search-scope]");
const rows = [...table.querySelectorAll("[data-ticket-row]")].map((tr) => ({
  tr, id: tr.dataset.ticketId, key: tr.dataset.summaryKey || null,
  size: Number(tr.dataset.summarySize), sha256: (tr.dataset.summarySha256 || "").toLowerCase(),
  text: "",
}));

const cell = (row, name) => row.tr.querySelector(`[data-summary="${name}"]`);

// One reason per row, in the subject's place; the other two cells stay empty.
function failRow(row, reason) {
  const subject = cell(row, "subject");
  subject.classList.remove("loading");
  subject.classList.add("summary-error");
  subject.colSpan = 3;
  subject.replaceChildren(`Summary not shown: ${reason}`);
  cell(row, "requester")?.remove();
  cell(row, "machine")?.remove();
  row.tr.dataset.summary = "error";
}

function fillRow(row, summary) {
  const requester = obj(summary.requester);
  const machine = obj(summary.machine);
  const values = {
    subject: str(summary.subject, 200) || "(no subject)",
    requester: [str(requester.name, 200), str(requester.email, 200)].filter(Boolean).join(" · ") || "—",
    machine: [str(machine.hostname, 200), str(machine.os, 200)].filter(Boolean).join(" · ") || "—",
  };
  for (const [name, value] of Object.entries(values)) {
    const td = cell(row, name);
    td.classList.remove("loading");
    td.replaceChildren(value); // text, never markup
  }
  row.text = Object.values(values).join(" ").toLowerCase();
  row.tr.dataset.summary = "shown";
}

async function requestSummaryGrant(ids) {
  let response;
  try {
    response = await fetch(table.dataset.summaryGrantUrl, {
      method: "POST", credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(table), "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ tickets: ids }),
    });
  } catch {
    throw new ApiError("Could not reach the portal to get an access grant.", { source: "portal" });
  }
  const body = await readJson(response);
  if (!response.ok || typeof body?.grant !== "string") {
    const reason = str(body?.detail, 300) || `HTTP ${response.status}`;
    throw new ApiError(`The portal did not give an access grant: ${reason}`, { source: "portal" });
  }
  return body;
}

async function loadOne(row, url) {
  let bytes;
  try {
    bytes = await fetchObject(url, Math.min(row.size, SUMMARY_LIMIT));
  } catch (error) {
    return failRow(row, error.code === "NoSuchKey" ? "it is not in your storage." : error.message);
  }
  const digest = await sha256Hex(bytes);
  if (digest !== null && (digest !== row.sha256 || bytes.length !== row.size)) {
    return failRow(row, "it changed after submission (its SHA-256 differs from the manifest). Open the ticket.");
  }
  let summary;
  try {
    summary = JSON.parse(new TextDecoder("utf-8").decode(bytes));
  } catch {
    return failRow(row, "it is not valid JSON.");
  }
  if (!summary || typeof summary !== "object" || summary.schema_version !== 1) {
    return failRow(row, "it is not a summary this page reads (schema_version 1).");
  }
  fillRow(row, summary);
}

function applySearch() {
  const needle = search.value.trim().toLowerCase();
  let shown = 0;
  rows.forEach((row) => {
    row.tr.hidden = Boolean(needle) && !row.text.includes(needle);
    if (!row.tr.hidden) shown += 1;
  });
  const loaded = rows.filter((r) => r.text).length;
  scope.textContent = `Searching the ${loaded} ticket${loaded === 1 ? "" : "s"} on this page whose summaries `
    + `loaded${needle ? ` · ${shown} match` : ""}: subjects, requesters and machines are in your storage, not `
    + "ours, so we cannot search them for you. Filters above apply to every ticket.";
}

async function main() {
  // Each ticket is read at its own storage location (its row says which): one
  // grant and one /v1/sign call per location, at that location's gatekeeper.
  const groups = new Map();
  for (const row of rows.filter((r) => r.key)) {
    const where = row.tr.dataset.location || "";
    if (!groups.has(where)) groups.set(where, []);
    groups.get(where).push(row);
  }
  const failures = [];
  await Promise.all([...groups.values()].map(async (wanted) => {
    try {
      const grant = await requestSummaryGrant(wanted.map((r) => r.id));
      const results = await signAll(grant.gatekeeper_url, grant.grant, wanted.map((r) => ({ op: "get", key: r.key })));
      await Promise.all(wanted.map((row, i) => (typeof results[i]?.url === "string"
        ? loadOne(row, results[i].url) : failRow(row, "the gatekeeper did not sign a link for it."))));
    } catch (error) {
      failures.push(error);
      wanted.forEach((row) => failRow(row, "see the message above the list."));
    }
  }));
  if (failures.length) {
    // Said once, above the table; each row points to it.
    showBanner(banner, "Subjects, requesters and machines could not be loaded.",
      failures.flatMap((error) => [error.message, error.hint]));
  }
  search.disabled = false;
  search.placeholder = "Subject, requester or machine";
  search.addEventListener("input", applySearch);
  applySearch();
  table.dataset.loaded = "true"; // for tests: every summary has settled
}

main().catch((error) => {
  console.error(error);
  showBanner(banner, "The list failed to load its summaries.", [String(error?.message || error)]);
  table.dataset.loaded = "true";
});
