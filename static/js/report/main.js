// The report page: get a grant from the portal, one /v1/sign call at the
// tenant's gatekeeper, fetch each object straight from the tenant's storage,
// check it against the manifest's SHA-256, and render. The page's HTML holds only
// what the vendor knows (ticket metadata and the manifest); no report content
// passes through the vendor.

import { fetchObject, requestGrant, sha256Hex, signAll } from "./api.js";
import * as render from "./render.js";

const REPORT_NAME = "report.json";
const MiB = 1024 * 1024;
const IMAGE_TYPES = new Set(["image/png", "image/jpeg"]);
const TEXT_TYPES = new Set(["text/plain", "text/csv"]);
// The page fetches only what it shows, and only up to these sizes (see
// docs/report-format.md); other files are checked by their listed size alone.
const FETCH_LIMITS = { report: 2 * MiB, image: 10 * MiB, text: 10 * MiB };
const REPORT_SECTIONS = ["message", "details", "resources", "processes", "events", "system"];

const root = document.querySelector("[data-report-root]");
const section = (name) => root.querySelector(`[data-section="${name}"] .section-body`);

function setState(name, state, message) {
  const body = section(name);
  body.closest("section").setAttribute("aria-busy", String(state === "loading"));
  body.closest("section").dataset.state = state;
  if (message) body.replaceChildren(render.el("p", { className: `state state-${state}` }, message));
}

function csrfToken() {
  const cookie = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="));
  return root.dataset.csrfToken || (cookie ? decodeURIComponent(cookie.slice(10)) : "");
}

// The manifest is rendered by the server into the Files table, one row per file.
function readManifest() {
  return [...root.querySelectorAll("[data-manifest-file]")].map((row) => {
    const { name, contentType } = row.dataset;
    const size = Number(row.dataset.size);
    const kind = name === REPORT_NAME ? "report" : IMAGE_TYPES.has(contentType) ? "image"
      : TEXT_TYPES.has(contentType) ? "text" : null;
    return {
      name, size, contentType, row,
      sha256: (row.dataset.sha256 || "").toLowerCase(),
      fetch: Boolean(kind) && size <= FETCH_LIMITS[kind],
    };
  });
}

function setFileStatus(file, status) {
  file.status = status;
  file.row.querySelector("[data-file-status]").replaceChildren(render.badge(status));
}

async function signManifest(files) {
  const grant = await requestGrant(root.dataset.grantUrl, csrfToken());
  // The page's own gatekeeper URL is the one its CSP allows; the grant's is a fallback.
  const gatekeeper = root.dataset.gatekeeperUrl || grant.gatekeeper_url;
  const prefix = root.dataset.prefix || grant.prefix;
  const ops = [{ op: "list", prefix }, ...files.map((f) => ({ op: "get", key: prefix + f.name }))];
  const [listing, ...gets] = await signAll(gatekeeper, grant.grant, ops);
  const objects = render.list(listing?.objects, 10000);
  const stored = new Map(objects.map((o) => [o?.key, o]));
  files.forEach((f, i) => {
    f.url = typeof gets[i]?.url === "string" ? gets[i].url : null;
    f.storedSize = stored.get(prefix + f.name)?.size;
    // A truncated listing cannot prove absence, so only a full one marks files missing.
    f.missing = !listing?.truncated && !stored.has(prefix + f.name);
  });
  return objects.length - files.filter((f) => stored.has(prefix + f.name)).length;
}

// Fetch one object and check it against the manifest. Resolves to its bytes
// (even if they do not match: the user sees them, with a warning).
async function loadFile(file) {
  if (file.missing || !file.url) {
    setFileStatus(file, "missing");
    throw new Error("it is not in the customer's storage");
  }
  if (!file.fetch) {
    const sizeDiffers = typeof file.storedSize === "number" && file.storedSize !== file.size;
    setFileStatus(file, sizeDiffers ? "mismatch" : "skipped");
    throw new Error(`${render.formatBytes(file.size)} is too large to preview here`);
  }
  let bytes;
  try {
    bytes = await fetchObject(file.url);
  } catch (error) {
    setFileStatus(file, "error");
    throw error;
  }
  const digest = await sha256Hex(bytes);
  setFileStatus(file, digest == null ? "unverifiable"
    : digest === file.sha256 && bytes.length === file.size ? "verified" : "mismatch");
  return bytes;
}

function parseReport(bytes) {
  if (bytes.length > FETCH_LIMITS.report) throw new Error("it is larger than 2 MiB");
  const report = JSON.parse(new TextDecoder("utf-8").decode(bytes));
  if (!report || typeof report !== "object" || Array.isArray(report)) throw new Error("it is not a JSON object");
  if (report.schema_version !== 1) throw new Error(`schema_version ${render.str(report.schema_version, 20) || "missing"} is not supported`);
  return report;
}

function renderReport(report) {
  const steps = {
    message: () => render.renderMessage(section("message"), report),
    details: () => render.renderDetails(section("details"), report),
    resources: () => render.renderChart(section("resources"), report.resource_usage),
    processes: () => render.renderProcesses(section("processes"), report.processes),
    events: () => render.renderEvents(section("events"), report.event_log),
    system: () => render.renderSystemInfo(section("system"), report.system_info),
  };
  // One malformed part must not take the others down with it.
  for (const [name, step] of Object.entries(steps)) {
    try {
      step();
      setState(name, "ready");
    } catch (error) {
      console.error(error);
      setState(name, "error", "This part of the report is malformed and cannot be shown.");
    }
  }
}

// Files named in report.json come first, in its order; manifest files it does
// not name follow, so a hostile report.json cannot hide an attachment.
function attachments(files, named, types) {
  const candidates = files.filter((f) => types.has(f.contentType));
  const first = render.list(named, 1000).map((n) => candidates.find((f) => f.name === n)).filter(Boolean);
  return [...new Set([...first, ...candidates])];
}

function renderAttachments(name, files, makeSlot, fill, loads) {
  const body = section(name);
  if (!files.length) {
    body.replaceChildren(render.emptyNote("None attached."));
    return setState(name, "ready");
  }
  const slots = files.map(makeSlot);
  body.replaceChildren(render.el("div", { className: `${name}-list` }, slots));
  setState(name, "ready");
  files.forEach((file, i) => loads.get(file).then(
    (bytes) => { fill(slots[i], bytes, file); render.setSlotStatus(slots[i], file.status); },
    (error) => render.setSlotStatus(slots[i], file.status || "error", `Not loaded: ${error.message}`),
  ));
}

function reportProblems(files, unlisted) {
  const changed = files.filter((f) => f.status === "mismatch").map((f) => f.name);
  const missing = files.filter((f) => f.status === "missing").map((f) => f.name);
  const failed = files.filter((f) => f.status === "error").map((f) => f.name);
  if (!changed.length && !missing.length && !failed.length && !unlisted) return;
  render.showBanner(root.querySelector("[data-testid=warning-banner]"), "Some files are not as submitted.", [
    changed.length && `Changed since submission (SHA-256 differs from the manifest): ${changed.join(", ")}. They are shown, but may have been altered.`,
    missing.length && `Missing from the customer's storage: ${missing.join(", ")}.`,
    failed.length && `Could not be fetched: ${failed.join(", ")}.`,
    unlisted && `${unlisted} other object(s) under this ticket's prefix are not in the manifest and are not shown.`,
  ]);
}

async function main() {
  const files = readManifest();
  [...REPORT_SECTIONS, "screenshots", "logs"].forEach((name) => setState(name, "loading"));
  files.forEach((f) => setFileStatus(f, "pending"));

  let unlisted;
  try {
    unlisted = await signManifest(files);
  } catch (error) {
    render.showBanner(root.querySelector("[data-testid=error-banner]"), error.message, [error.hint]);
    [...REPORT_SECTIONS, "screenshots", "logs"].forEach((name) => setState(name, "blocked", "Not loaded: see the message above."));
    files.forEach((f) => setFileStatus(f, "error"));
    root.dataset.loaded = "true";
    return;
  }

  const loads = new Map(files.map((f) => [f, loadFile(f)]));
  loads.forEach((p) => p.catch(() => {})); // failures are shown per file, not thrown

  let report = {};
  const reportFile = files.find((f) => f.name === REPORT_NAME);
  try {
    if (!reportFile) throw new Error("this ticket has none");
    report = parseReport(await loads.get(reportFile));
    renderReport(report);
  } catch (error) {
    REPORT_SECTIONS.forEach((name) => setState(name, "error", `${REPORT_NAME} could not be read: ${error.message}.`));
  }

  renderAttachments("screenshots", attachments(files, report.screenshots, IMAGE_TYPES), render.screenshotSlot,
    (slot, bytes, file) => render.fillScreenshot(slot, URL.createObjectURL(new Blob([bytes], { type: file.contentType })), file.name),
    loads);
  renderAttachments("logs", attachments(files, report.logs, TEXT_TYPES), render.logSlot,
    (slot, bytes) => render.fillLog(slot, bytes), loads);

  await Promise.allSettled(loads.values());
  reportProblems(files, unlisted);
  root.dataset.loaded = "true"; // for tests: everything has settled
}

main().catch((error) => {
  // A bug here must still leave the user a message rather than spinners.
  console.error(error);
  render.showBanner(root.querySelector("[data-testid=error-banner]"), "The report page failed to load the report.", [String(error?.message || error)]);
  root.dataset.loaded = "true";
});
