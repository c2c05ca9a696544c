// How much the report page may download, file by file: decided before any byte
// is fetched, from the manifest (what the agent submitted) and from storage's
// listing (what is there now, as the gatekeeper reports it). Pure functions.

export const REPORT_NAME = "report.json";
// The agent's summary of report.json, for the ticket list (docs/report-format.md):
// fetched and checked like the report, within the report's limit.
export const SUMMARY_NAME = "summary.json";
const MiB = 1024 * 1024;
export const IMAGE_TYPES = new Set(["image/png", "image/jpeg"]);
export const TEXT_TYPES = new Set(["text/plain", "text/csv"]);
// The page fetches only what it shows, and only up to these sizes (see
// docs/report-format.md); other files are checked by their listed size alone.
export const FETCH_LIMITS = { report: 2 * MiB, image: 10 * MiB, text: 10 * MiB };

// "report" | "image" | "text", or null for a file this page does not open.
export function fileKind(name, contentType) {
  if (name === REPORT_NAME || name === SUMMARY_NAME) return "report";
  if (IMAGE_TYPES.has(contentType)) return "image";
  return TEXT_TYPES.has(contentType) ? "text" : null;
}

const validSize = (n) => Number.isSafeInteger(n) && n >= 0;

// Whether the manifest alone lets the page fetch a file (its get is signed then).
export function manifestAllows(kind, size) {
  return Boolean(kind) && validSize(size) && size <= FETCH_LIMITS[kind];
}

// What to do with one file once storage's listing is known: {fetch, limit,
// refusal}. `limit` is the most bytes the download may bring: the manifest's
// size (never over the kind's cap); a stream running past it is stopped.
// refusal: "type" (not a file this page opens), "cap" (the manifest's size is
// over the kind's cap, or not a size), "oversized" (storage lists it larger
// than the manifest: not downloaded at all). A listing without the file, or
// without a usable size, leaves the stream limit as the only bound.
export function downloadPlan({ kind, size, storedSize }) {
  if (!kind) return { fetch: false, limit: 0, refusal: "type" };
  if (!manifestAllows(kind, size)) return { fetch: false, limit: 0, refusal: "cap" };
  if (validSize(storedSize) && storedSize > size) return { fetch: false, limit: 0, refusal: "oversized" };
  return { fetch: true, limit: Math.min(size, FETCH_LIMITS[kind]), refusal: null };
}
