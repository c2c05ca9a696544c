// The loaded entries as CSV (RFC 4180), built in the browser: the log still
// never passes through the portal.
//
// A spreadsheet runs a cell that starts with = + - @ (or a tab or carriage
// return, which some programs strip first) as a formula, and user agents, keys
// and subjects are whatever a client chose to send. Such cells get a leading
// apostrophe so they open as text (OWASP's advice on CSV injection).

import { readEntry } from "./table.js";

export const COLUMNS = ["time_utc", "request_id", "outcome", "op", "key", "client_ip", "country", "sub", "name",
  "reason", "status", "user_agent", "origin", "jti", "kid", "approval", "approvers",
  "idp_sub", "idp_iss"];
const FORMULA_START = /^[=+\-@\t\r]/;

export function csvCell(value) {
  let text = value == null ? "" : String(value);
  if (FORMULA_START.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) || text !== text.trim() ? `"${text.replaceAll('"', '""')}"` : text;
}

export function toCsv(entries) {
  const lines = [COLUMNS.join(",")];
  for (const entry of entries) {
    const e = readEntry(entry);
    const values = { ...e, time_utc: e.utc };
    lines.push(COLUMNS.map((name) => csvCell(values[name])).join(","));
  }
  return lines.join("\r\n") + "\r\n";
}

// Starts a download of the CSV. The byte-order mark tells spreadsheet programs
// the file is UTF-8.
export function downloadCsv(entries, filename) {
  const blob = new Blob(["\ufeff", toCsv(entries)], { type: "text/csv;charset=utf-8" });
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  // Revoked later: revoking at once can cancel the download in some browsers.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
