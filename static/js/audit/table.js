// Audit entries as table rows. Entries come from the customer's gatekeeper and
// carry what clients sent (user agents, keys, grant claims): untrusted text. Each
// field is type-checked and cut as it is read, and goes into the page as text
// (el() appends strings as text nodes), never as markup.

import { DASH, el, formatZoned, str } from "../lib/dom.js";

// ts is epoch seconds; anything else is not a time.
export function entryDate(entry) {
  const ts = entry?.ts;
  if (typeof ts !== "number" || !Number.isFinite(ts)) return null;
  const date = new Date(ts * 1000);
  return Number.isNaN(date.getTime()) ? null : date;
}

export const utcText = (date) => (date ? date.toISOString().replace(".000Z", "Z") : "");

// The fields of one entry as display text, in the protocol's names.
export function readEntry(entry) {
  const date = entryDate(entry);
  const status = entry?.status;
  return {
    date,
    utc: utcText(date),
    request_id: str(entry?.request_id, 100),
    client_ip: str(entry?.client_ip, 64),
    country: str(entry?.country, 16),
    user_agent: str(entry?.user_agent, 2048),
    origin: str(entry?.origin, 256),
    op: str(entry?.op, 32),
    key: str(entry?.key, 1100),
    outcome: str(entry?.outcome, 16),
    reason: str(entry?.reason, 64),
    status: typeof status === "number" && Number.isInteger(status) ? String(status) : "",
    jti: str(entry?.jti, 128),
    sub: str(entry?.sub, 256),
    name: str(entry?.name, 200),
    kid: str(entry?.kid, 128),
    // A vendor support grant's: the customer's approval id and who signed it.
    approval: str(entry?.approval, 128),
    approvers: str(entry?.approvers, 300),
    // With the customer's [identity]: the person as its IdP names them, and that IdP.
    idp_sub: str(entry?.idp_sub, 256),
    idp_iss: str(entry?.idp_iss, 256),
  };
}

// Every key is one of gatekeeper/errors.py's OUTCOMES (tests/test_js_units.py checks).
export const OUTCOME_CLASSES = { allow: "outcome-allow", deny: "outcome-deny" };

function outcomeBadge(outcome) {
  const known = Object.hasOwn(OUTCOME_CLASSES, outcome);
  return el("span", { className: `outcome ${known ? OUTCOME_CLASSES[outcome] : "outcome-other"}`,
    "data-outcome": outcome }, outcome || DASH);
}

export function row(entry) {
  const e = readEntry(entry);
  const time = e.date
    ? el("time", { datetime: e.utc, title: `${e.utc} (UTC)` }, formatZoned(e.date, { seconds: true }))
    : DASH;
  return el("tr", { testid: "audit-row", "data-outcome": e.outcome, "data-op": e.op, "data-request-id": e.request_id },
    el("td", { className: "nowrap" }, time),
    el("td", {}, outcomeBadge(e.outcome)),
    el("td", { className: "mono" }, e.op || DASH),
    el("td", { className: "mono key" }, e.key || DASH),
    el("td", { className: "mono nowrap" }, e.client_ip || DASH),
    el("td", {}, e.country || DASH),
    el("td", { className: "mono" }, e.sub || DASH),
    el("td", {}, e.name || DASH),
    el("td", { className: "mono" }, e.reason || DASH),
    el("td", { className: "num" }, e.status || DASH),
    agentCell(e.user_agent),
    // A vendor support read's: the customer's approval and who signed it.
    el("td", { className: "mono", testid: "audit-approval" },
      e.approval ? `${e.approval} (${e.approvers || "?"})` : DASH),
    el("td", { className: "mono", testid: "audit-idp", title: e.idp_iss || null }, e.idp_sub || DASH),
  );
}

// Cut to one line in the table; a click (or Enter) shows it in full, and again hides it.
function agentCell(userAgent) {
  if (!userAgent) return el("td", { className: "agent" }, DASH);
  const cell = el("td", { className: "agent", title: userAgent });
  const toggle = el("button", { type: "button", className: "link agent-toggle", "aria-expanded": "false",
    testid: "agent-toggle", onclick: () => {
      const full = cell.classList.toggle("full");
      toggle.setAttribute("aria-expanded", String(full));
    } }, userAgent);
  cell.append(toggle);
  return cell;
}
