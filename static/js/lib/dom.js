// What every page's browser code shares for putting untrusted data on the page:
// typed readers (each value is type-checked and cut as it is read), formatters,
// and el(), which makes elements whose string children become text nodes, so
// data can never become markup. Nothing here touches the DOM until called.

const SVG_NS = "http://www.w3.org/2000/svg";
export const DASH = "—";

// --- reading untrusted values --------------------------------------------------

export function str(value, max = 2000) {
  if (typeof value === "string") return value.slice(0, max);
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  if (typeof value === "boolean") return value ? "yes" : "no";
  return "";
}
export const num = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);
export const list = (v, max) => (Array.isArray(v) ? v.slice(0, max) : []);
export const obj = (v) => (v && typeof v === "object" && !Array.isArray(v) ? v : {});

// --- formatters ------------------------------------------------------------------

export const DATE_TIME = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
export const CLOCK = new Intl.DateTimeFormat(undefined, { timeStyle: "medium" });

// One format for every time a page shows: YYYY-MM-DD HH:MM[:SS] and the zone, in
// the user's own zone (the browser's), so no time is read in the wrong zone.
const ZONED = new Intl.DateTimeFormat("en-CA", {
  year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
  hourCycle: "h23", timeZoneName: "short",
});
export function formatZoned(date, { seconds = false, format = ZONED } = {}) {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) return DASH;
  const part = Object.fromEntries(format.formatToParts(date).map((p) => [p.type, p.value]));
  const clock = `${part.hour}:${part.minute}${seconds ? `:${part.second}` : ""}`;
  return `${part.year}-${part.month}-${part.day} ${clock} ${part.timeZoneName}`;
}

export function formatTime(value, format = DATE_TIME) {
  const text = str(value, 64);
  const date = new Date(text);
  return text && !Number.isNaN(date.getTime()) ? format.format(date) : text || DASH;
}
export function formatNumber(n, digits = 1) {
  return n == null ? DASH : n.toLocaleString(undefined, { maximumFractionDigits: digits });
}
// Identifiers (PIDs, event IDs) are numbers but read without digit grouping.
export const formatId = (n) => (n == null ? DASH : String(n));
export function formatBytes(n) {
  if (n == null) return DASH;
  const units = ["bytes", "KB", "MB", "GB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${formatNumber(n, i ? 1 : 0)} ${units[i]}`;
}
export function formatDuration(seconds) {
  if (seconds == null) return DASH;
  const d = Math.floor(seconds / 86400), h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return d ? `${d} d ${h} h` : h ? `${h} h ${m} min` : `${m} min`;
}
export const humanize = (key) => key.replace(/_/g, " ").trim().replace(/^./, (c) => c.toUpperCase()) || key;

// --- element helpers -------------------------------------------------------------

// Props are our own attribute names; children are nodes or strings (which
// append() turns into text nodes, so data can never become markup).
export function el(tag, props = {}, ...children) {
  return assemble(document.createElement(tag), props, children);
}
export function svg(tag, props = {}, ...children) {
  return assemble(document.createElementNS(SVG_NS, tag), props, children);
}
function assemble(node, props, children) {
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (key === "testid") node.dataset.testid = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key === "className" ? "class" : key, value === true ? "" : String(value));
  }
  node.append(...children.flat().filter((c) => c != null && c !== false));
  return node;
}

export function emptyNote(text) {
  return el("p", { className: "empty" }, text);
}

export function showBanner(banner, title, details = []) {
  banner.replaceChildren(el("strong", {}, title), ...details.filter(Boolean).map((d) => el("p", {}, d)));
  banner.hidden = false;
}
