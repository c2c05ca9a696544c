// The report page: get a grant from the portal, one /v1/sign call at the
// tenant's gatekeeper, fetch each object straight from the tenant's storage,
// check it against the manifest's SHA-256, and render. The page's HTML holds only
// what the vendor knows (ticket metadata and the manifest); no report content
// passes through the vendor.

import { el, emptyNote, formatBytes, list, showBanner, str } from "../lib/dom.js";
import { TooLargeError, csrfToken, requestGrant } from "../lib/http.js";
import { fetchObject, sha256Hex, signAll, storageHint } from "./api.js";
import { enableDownloads, loadNotes, readNotes, setUpNoteForm } from "./notes.js";
import { FETCH_LIMITS, IMAGE_TYPES, REPORT_NAME, TEXT_TYPES, downloadPlan, fileKind, manifestAllows } from "./limits.js";
import * as render from "./render.js";

const REPORT_SECTIONS = ["message", "details", "resources", "processes", "events", "system"];

const root = document.querySelector("[data-report-root]");
const section = (name) => root.querySelector(`[data-section="${name}"] .section-body`);

function setState(name, state, message) {
  const body = section(name);
  body.closest("section").setAttribute("aria-busy", String(state === "loading"));
  body.closest("section").dataset.state = state;
  if (message) body.replaceChildren(el("p", { className: `state state-${state}` }, message));
}

// The manifest is rendered by the server into the Files table, one row per file.
function readManifest() {
  return [...root.querySelectorAll("[data-manifest-file]")].map((row) => {
    const { name, contentType } = row.dataset;
    const size = Number(row.dataset.size);
    const kind = fileKind(name, contentType);
    return {
      name, size, contentType, row, kind,
      sha256: (row.dataset.sha256 || "").toLowerCase(),
      fetch: manifestAllows(kind, size), // a get is signed for it
    };
  });
}

function setFileStatus(file, status) {
  file.status = status;
  file.row.querySelector("[data-file-status]").replaceChildren(render.badge(status));
}

async function signManifest(files, notes) {
  const grant = await requestGrant(root.dataset.grantUrl, csrfToken(root));
  // The page's own gatekeeper URL is the one its CSP allows; the grant's is a fallback.
  const gatekeeper = root.dataset.gatekeeperUrl || grant.gatekeeper_url;
  const prefix = root.dataset.prefix || grant.prefix;
  // A `get` only for the files this page will fetch: each signed get is a read
  // in the customer's audit log, so it must be one that really happens. The
  // others are checked against the listing alone.
  const fetched = files.filter((f) => f.fetch);
  // The ticket's notes are read in the same batch: they are under its prefix.
  const ops = [{ op: "list", prefix }, ...fetched.map((f) => ({ op: "get", key: prefix + f.name })),
    ...notes.map((n) => ({ op: "get", key: n.key }))];
  // A vendor support grant comes with the customer's approval (X-Approval); others with none.
  const [listing, ...gets] = await signAll(gatekeeper, grant.grant, ops, grant.approval);
  fetched.forEach((f, i) => { f.url = typeof gets[i]?.url === "string" ? gets[i].url : null; });
  notes.forEach((n, i) => { n.url = gets[fetched.length + i]?.url; });
  const objects = list(listing?.objects, 10000);
  const stored = new Map(objects.map((o) => [o?.key, o]));
  files.forEach((f) => {
    f.storedSize = stored.get(prefix + f.name)?.size;
    // The listing came in the same batch as the gets: the real sizes are known
    // before any byte is downloaded.
    f.plan = downloadPlan(f);
    // A truncated listing cannot prove absence, so only a full one marks files missing.
    f.missing = !listing?.truncated && !stored.has(prefix + f.name);
  });
  const noteKeys = new Set(notes.map((n) => n.key));
  return objects.filter((o) => !noteKeys.has(o?.key)).length - files.filter((f) => stored.has(prefix + f.name)).length;
}

// Fetch one object and check it against the manifest. Resolves to its bytes
// (even if they do not match: the user sees them, with a warning).
async function loadFile(file) {
  if (!file.fetch) {
    if (file.missing) {
      setFileStatus(file, "missing");
      throw new Error("it is not in the customer's storage");
    }
    const sizeDiffers = typeof file.storedSize === "number" && file.storedSize !== file.size;
    setFileStatus(file, sizeDiffers ? "mismatch" : "skipped");
    throw new Error(file.kind ? `it is larger than this page's limit of ${formatBytes(FETCH_LIMITS[file.kind])}`
      : "this page does not open files of this type");
  }
  if (!file.url) {
    setFileStatus(file, "error");
    throw new Error("the gatekeeper did not sign a URL for it");
  }
  if (file.plan.refusal === "oversized") {
    // Not one byte of it is downloaded: storage holds more than was submitted.
    file.oversized = `${formatBytes(file.storedSize)} in storage`;
    setFileStatus(file, "oversized");
    throw new Error(OVERSIZED_NOTE);
  }
  // A file the listing lacks is fetched all the same (its get was signed, and
  // the listing may lag): storage's own answer, NoSuchKey, settles it.
  let bytes;
  try {
    bytes = await fetchObject(file.url, file.plan.limit);
  } catch (error) {
    if (error instanceof TooLargeError) {
      file.oversized = error.announced ? `${formatBytes(error.received)} announced by storage`
        : `more than ${formatBytes(error.limit)} sent by storage; stopped`;
      setFileStatus(file, "oversized");
      throw new Error(OVERSIZED_NOTE);
    }
    file.error = error;
    if (error.source === "storage" && error.status == null && error.code == null) {
      // No answer at all (network, firewall, storage down): says nothing about the
      // file itself. Said once, in the error banner; the file's place points there.
      file.unreachable = true;
      setFileStatus(file, "error");
      throw new Error(UNREACHABLE_NOTE);
    }
    if (!file.missing && error.code !== "NoSuchKey") {
      setFileStatus(file, "error");
      throw error;
    }
    setFileStatus(file, "missing");
    const answer = error.code || (error.status ? `HTTP ${error.status}` : "no answer");
    throw new Error(`it is not in the customer's storage (storage answered ${answer})`);
  }
  file.missing = false;
  const digest = await sha256Hex(bytes);
  setFileStatus(file, digest == null ? "unverifiable"
    : digest === file.sha256 && bytes.length === file.size ? "verified" : "mismatch");
  return bytes;
}

// Why is said once, in the warning banner, with the sizes; the file's own place points there.
const OVERSIZED_NOTE = "see the warning above";
const UNREACHABLE_NOTE = "see the message above";

// A message as one sentence, whether or not it already ends like one.
const sentence = (text) => (/[.!?]$/.test(text) ? text : `${text}.`);

function parseReport(bytes) {
  // The manifest's size was checked before fetching; storage's bytes may differ.
  if (bytes.length > FETCH_LIMITS.report) throw new Error(`it is larger than this page's limit of ${formatBytes(FETCH_LIMITS.report)}`);
  let report;
  try {
    report = JSON.parse(new TextDecoder("utf-8").decode(bytes));
  } catch {
    throw new Error("it is not valid JSON");
  }
  if (!report || typeof report !== "object" || Array.isArray(report)) throw new Error("it is not a JSON object");
  if (report.schema_version !== 1) throw new Error(`schema_version ${str(report.schema_version, 20) || "missing"} is not supported`);
  return report;
}

// The subject is what the user typed: it lives only in report.json (the vendor
// never holds it), so it appears once the report has been fetched and read.
function renderSubject(report) {
  const subject = root.querySelector("[data-testid=subject]");
  subject.textContent = str(report.subject, 200);
  subject.hidden = !subject.textContent.trim();
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
  const first = list(named, 1000).map((n) => candidates.find((f) => f.name === n)).filter(Boolean);
  return [...new Set([...first, ...candidates])];
}

function renderAttachments(name, files, makeSlot, fill, loads) {
  const body = section(name);
  if (!files.length) {
    body.replaceChildren(emptyNote("None attached."));
    return setState(name, "ready");
  }
  const slots = files.map(makeSlot);
  body.replaceChildren(el("div", { className: `${name}-list` }, slots));
  setState(name, "ready");
  files.forEach((file, i) => loads.get(file).then(
    (bytes) => { fill(slots[i], bytes, file); render.setSlotStatus(slots[i], file.status); },
    (error) => render.setSlotStatus(slots[i], file.status || "error",
      [`Not loaded: ${sentence(error.message)}`, error.hint].filter(Boolean).join(" ")),
  ));
}

// Storage's error code (AccessDenied, RequestTimeTooSkewed, ...) goes with the
// name, so a banner of many refusals still says why each one failed.
function namesWithCodes(files) {
  const byCode = new Map();
  files.forEach((f) => {
    const code = f.error?.source === "storage" ? f.error.code || "" : "";
    byCode.set(code, [...(byCode.get(code) || []), f.name]);
  });
  return [...byCode].map(([code, names]) => names.join(", ") + (code ? ` (${code})` : "")).join("; ");
}

// Storage that does not answer is not tampering: one error banner says what
// happened, apart from the warning about files that are not as submitted.
function reportUnreachable(files, notes) {
  const unreachable = [...files.filter((f) => f.unreachable).map((f) => f.name),
    ...notes.filter((n) => n.unreachable).map((_, i, all) => (all.length > 1 ? `note ${i + 1}` : "a note"))];
  if (!unreachable.length) return;
  showBanner(root.querySelector("[data-testid=error-banner]"), "The customer's storage could not be reached.", [
    `Your browser got no answer from it for: ${unreachable.join(", ")}.`,
    "This is a connection problem (network, firewall, or the storage is down), not a sign that anything changed. "
      + "Reload the page to try again; if it persists, ask the tenant admin.",
  ]);
}

function reportProblems(files, unlisted, reportIssue, notes = []) {
  reportUnreachable(files, notes);
  const oversized = files.filter((f) => f.status === "oversized");
  const changed = files.filter((f) => f.status === "mismatch").map((f) => f.name);
  const missing = files.filter((f) => f.status === "missing").map((f) => f.name);
  const failed = files.filter((f) => f.status === "error" && !f.unreachable);
  if (!oversized.length && !changed.length && !missing.length && !failed.length && !unlisted && !reportIssue) return;
  const hints = new Set(failed.map((f) => storageHint(f.error?.code)).filter(Boolean));
  const filesWrong = oversized.length || changed.length || missing.length || failed.length || unlisted;
  showBanner(root.querySelector("[data-testid=warning-banner]"),
    filesWrong ? "Some files are not as submitted." : `The report (${REPORT_NAME}) could not be read.`, [
      oversized.length && `Not downloaded, larger in storage than the manifest says: ${oversized.map(
        (f) => `${f.name} (${f.oversized}; the manifest lists ${formatBytes(f.size)})`).join(", ")}. `
        + "They have changed since submission; this page downloads no more than was submitted.",
      changed.length && `Changed since submission (SHA-256 differs from the manifest): ${changed.join(", ")}. They are shown, but may have been altered.`,
      missing.length && `Missing from the customer's storage: ${missing.join(", ")}.`,
      failed.length && `Could not be fetched: ${namesWithCodes(failed)}.`,
      ...hints,
      reportIssue && `${reportIssue} The report's own sections are not shown; its attachments and the file list are.`,
      unlisted && `${unlisted} other object(s) under this ticket's prefix are not in the manifest and are not shown.`,
    ]);
}

async function main() {
  const files = readManifest();
  const notes = readNotes(root);
  setUpNoteForm(root);
  [...REPORT_SECTIONS, "screenshots", "logs"].forEach((name) => setState(name, "loading"));
  files.forEach((f) => setFileStatus(f, "pending"));

  let unlisted;
  try {
    unlisted = await signManifest(files, notes);
  } catch (error) {
    showBanner(root.querySelector("[data-testid=error-banner]"), error.message, [error.hint]);
    [...REPORT_SECTIONS, "screenshots", "logs"].forEach((name) => setState(name, "blocked", "Not loaded: see the message above."));
    files.forEach((f) => setFileStatus(f, "error"));
    notes.forEach((n) => n.text.replaceChildren("Not loaded: see the message above."));
    enableDownloads(root, files, new Map());
    root.dataset.loaded = "true";
    return;
  }

  const loads = new Map(files.map((f) => [f, loadFile(f)]));
  const noteLoads = loadNotes(notes);
  enableDownloads(root, files, loads);
  loads.forEach((p) => p.catch(() => {})); // failures are shown per file, not thrown

  let report = {};
  let reportIssue = null; // why report.json could not be read, when its file is otherwise fine
  const reportFile = files.find((f) => f.name === REPORT_NAME);
  try {
    if (!reportFile) throw new Error("this ticket has none");
    report = parseReport(await loads.get(reportFile));
    renderSubject(report);
    renderReport(report);
  } catch (error) {
    const reason = `${REPORT_NAME} could not be read: ${sentence(error.message)}`;
    // An oversized report.json is explained once, in the banner.
    REPORT_SECTIONS.forEach((name) => setState(name, "error", reportFile?.status === "oversized"
      ? `${REPORT_NAME} was not downloaded: see the warning above.`
      : reportFile?.unreachable ? "Not loaded: see the message above." : reason));
    // A missing, unfetchable or oversized report.json is in the banner's file lines already.
    if (!["missing", "error", "oversized"].includes(reportFile?.status)) reportIssue = reason;
  }

  renderAttachments("screenshots", attachments(files, report.screenshots, IMAGE_TYPES), render.screenshotSlot,
    (slot, bytes, file) => render.fillScreenshot(slot, URL.createObjectURL(new Blob([bytes], { type: file.contentType })), file.name),
    loads);
  renderAttachments("logs", attachments(files, report.logs, TEXT_TYPES), render.logSlot,
    (slot, bytes, file) => render.fillLog(slot, bytes, file), loads);

  await Promise.allSettled([...loads.values(), noteLoads]);
  reportProblems(files, unlisted, reportIssue, notes);
  root.dataset.loaded = "true"; // for tests: everything has settled
}

main().catch((error) => {
  // A bug here must still leave the user a message rather than spinners.
  console.error(error);
  showBanner(root.querySelector("[data-testid=error-banner]"), "The report page failed to load the report.", [String(error?.message || error)]);
  root.dataset.loaded = "true";
});
