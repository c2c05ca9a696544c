// Builds the report's DOM. Everything in a report is untrusted input written by
// a program on an end user's machine, so: elements are made with createElement /
// createElementNS, text goes in as text nodes (append/textContent), never
// innerHTML; every field is type-checked as it is read and every list is capped.

import {
  CLOCK, DASH, el, emptyNote, formatBytes, formatDuration, formatId, formatNumber, formatTime, humanize, list, num,
  obj, str, svg,
} from "../lib/dom.js";

export const LIMITS = {
  processes: 5000, events: 10000, samples: 10000, sections: 50, rows: 500,
  machineKeys: 64, logBytes: 1024 * 1024,
};

// --- tables and file status -----------------------------------------------------

function kvTable(title, rows) {
  return el("table", { className: "kv" },
    el("caption", {}, title),
    el("tbody", {}, rows.map(([label, value]) =>
      el("tr", {}, el("th", { scope: "row" }, label || DASH), el("td", {}, value || DASH)))));
}

const BADGES = {
  pending: ["Checking…", "Fetching and checking the file"],
  verified: ["✓ Verified", "SHA-256 matches the manifest recorded at submission"],
  mismatch: ["⚠ Changed", "SHA-256 differs from the manifest: the file changed after it was submitted"],
  unverifiable: ["Not verified", "This browser cannot compute SHA-256 here (WebCrypto needs HTTPS)"],
  missing: ["Missing", "The file is not in the customer's storage"],
  error: ["Not loaded", "The file could not be fetched"],
  oversized: ["⚠ Too large", "Storage holds more than the manifest says: the page did not download it"],
  skipped: ["Not fetched", "This page does not preview this file; its size in storage matches the manifest"],
};
export function badge(status) {
  const [label, title] = BADGES[status] || BADGES.error;
  return el("span", { className: `badge badge-${status}`, title, "data-status": status }, label);
}

// --- sections --------------------------------------------------------------------------

export function renderMessage(body, report) {
  const user = obj(report.user);
  body.replaceChildren(
    el("blockquote", { className: "report-message", testid: "message" }, str(report.message, 20000) || "(no message)"),
    el("p", { className: "muted" },
      `${str(user.name, 200) || "Unknown user"} · written ${formatTime(report.submitted_at)} (the user's clock)`),
  );
}

const MACHINE_LABELS = {
  hostname: "Host name", os: "Operating system", os_version: "OS version", cpu: "CPU",
  cpu_cores: "CPU cores", memory_total_mb: "Memory", uptime_seconds: "Uptime",
};
const MACHINE_FORMATS = {
  memory_total_mb: (v) => (num(v) == null ? str(v) : `${formatNumber(v / 1024)} GB`),
  uptime_seconds: (v) => formatDuration(num(v)),
};

export function renderDetails(body, report) {
  const user = obj(report.user);
  const machine = obj(report.machine);
  const keys = Object.keys(machine).slice(0, LIMITS.machineKeys);
  // Object.hasOwn, not `in`: report keys like "constructor" must not match Object.prototype.
  const known = (k) => Object.hasOwn(MACHINE_LABELS, k);
  const ordered = [...Object.keys(MACHINE_LABELS).filter((k) => Object.hasOwn(machine, k)),
    ...keys.filter((k) => !known(k))];
  body.replaceChildren(el("div", { className: "grid" },
    kvTable("User", [["Name", str(user.name, 200)], ["Email", str(user.email, 200)],
      ["Department", str(user.department, 200)]]),
    kvTable("Machine", ordered.map((k) => [
      known(k) ? MACHINE_LABELS[k] : humanize(str(k, 64)),
      Object.hasOwn(MACHINE_FORMATS, k) ? MACHINE_FORMATS[k](machine[k]) : str(machine[k])])),
  ));
}

export function renderSystemInfo(body, sections) {
  const tables = list(sections, LIMITS.sections).map((section) => kvTable(
    str(obj(section).title, 200) || "Untitled",
    list(obj(section).rows, LIMITS.rows).map((row) => [str(list(row, 2)[0], 200), str(list(row, 2)[1])]),
  ));
  body.replaceChildren(tables.length ? el("div", { className: "grid" }, tables) : emptyNote("No system information in this report."));
}

const PROCESS_COLUMNS = [
  { key: "pid", label: "PID", numeric: true, id: true },
  { key: "name", label: "Name" },
  { key: "user", label: "User" },
  { key: "cpu_percent", label: "CPU %", numeric: true, digits: 1 },
  { key: "memory_mb", label: "Memory (MB)", numeric: true, digits: 1 },
  { key: "threads", label: "Threads", numeric: true, digits: 0 },
];

function compareBy(column, direction) {
  return (a, b) => {
    const x = a[column.key], y = b[column.key];
    if (!column.numeric) return direction * x.localeCompare(y, undefined, { numeric: true, sensitivity: "base" });
    if (x == null || y == null) return (x == null) - (y == null); // blanks last either way
    return direction * (x - y);
  };
}

export function renderProcesses(body, processes) {
  const rows = list(processes, LIMITS.processes).map((p) => Object.fromEntries(
    PROCESS_COLUMNS.map((c) => [c.key, c.numeric ? num(obj(p)[c.key]) : str(obj(p)[c.key], 200)])));
  if (!rows.length) return body.replaceChildren(emptyNote("No process list in this report."));

  let sort = { column: PROCESS_COLUMNS[3], direction: -1 }; // busiest first
  const tbody = el("tbody");
  const count = el("span", { className: "muted" });
  const filter = el("input", { type: "search", placeholder: "Filter by name or user", "aria-label": "Filter processes", oninput: draw });
  const headers = PROCESS_COLUMNS.map((column) => el("th", { scope: "col", className: column.numeric ? "num" : null },
    el("button", { type: "button", className: "sort", onclick: () => {
      sort = { column, direction: sort.column === column ? -sort.direction : (column.numeric ? -1 : 1) };
      draw();
    } }, column.label)));

  function draw() {
    const needle = filter.value.trim().toLowerCase();
    const shown = rows.filter((r) => !needle || r.name.toLowerCase().includes(needle) || r.user.toLowerCase().includes(needle))
      .sort(compareBy(sort.column, sort.direction));
    tbody.replaceChildren(...shown.map((r) => el("tr", { testid: "process-row", className: r.cpu_percent >= 50 ? "hot" : null },
      PROCESS_COLUMNS.map((c) => el("td", { className: c.numeric ? "num" : null },
        c.id ? formatId(r[c.key]) : c.numeric ? formatNumber(r[c.key], c.digits) : r[c.key] || DASH)))));
    headers.forEach((th, i) => {
      const active = PROCESS_COLUMNS[i] === sort.column;
      th.setAttribute("aria-sort", active ? (sort.direction > 0 ? "ascending" : "descending") : "none");
    });
    count.textContent = `${shown.length} of ${rows.length} processes`;
  }
  draw();
  body.replaceChildren(
    el("div", { className: "toolbar" }, filter, count),
    el("div", { className: "table-scroll" },
      el("table", { className: "data", testid: "process-table" }, el("thead", {}, el("tr", {}, headers)), tbody)),
  );
}

const LEVELS = ["critical", "error", "warning", "info", "debug"];

export function renderEvents(body, events) {
  const rows = list(events, LIMITS.events).map((e) => {
    const level = str(obj(e).level, 20).toLowerCase();
    return { ...obj(e), level: LEVELS.includes(level) ? level : "other", time: str(obj(e).time, 64) };
  }).sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : 0)); // newest first
  if (!rows.length) return body.replaceChildren(emptyNote("No event log in this report."));

  const counts = Object.fromEntries([...LEVELS, "other"].map((l) => [l, rows.filter((r) => r.level === l).length]));
  const count = el("span", { className: "muted" });
  const select = el("select", { "aria-label": "Show level", testid: "event-level-filter", onchange: apply },
    el("option", { value: "" }, `All levels (${rows.length})`),
    [...LEVELS, "other"].filter((l) => counts[l]).map((l) => el("option", { value: l }, `${humanize(l)} (${counts[l]})`)));
  const trs = rows.map((r) => el("tr", { testid: "event-row", "data-level": r.level },
    el("td", { className: "nowrap" }, formatTime(r.time)),
    el("td", {}, el("span", { className: `level level-${r.level}` }, humanize(r.level))),
    el("td", {}, str(r.source, 200) || DASH),
    el("td", { className: "num" }, formatId(num(r.event_id))),
    el("td", { className: "wrap" }, str(r.message, 4000))));

  function apply() {
    trs.forEach((tr) => { tr.hidden = Boolean(select.value) && tr.dataset.level !== select.value; });
    count.textContent = `${trs.filter((tr) => !tr.hidden).length} of ${rows.length} events, newest first`;
  }
  apply();
  body.replaceChildren(
    el("div", { className: "toolbar" }, el("label", {}, "Level ", select), count),
    el("div", { className: "table-scroll" }, el("table", { className: "data events" },
      el("thead", {}, el("tr", {}, ["Time", "Level", "Source", "Event ID", "Message"].map((h) =>
        el("th", { scope: "col", className: h === "Event ID" ? "num" : null }, h)))),
      el("tbody", {}, trs))),
  );
}

// --- attachments: one slot per file, filled when its bytes are checked ------------

let lightbox = null;
function openLightbox(src, caption) {
  if (!lightbox) {
    lightbox = el("dialog", { className: "lightbox", testid: "lightbox", onclick: () => lightbox.close() },
      el("img", { alt: "" }), el("p", {}), el("button", { type: "button", className: "close", "aria-label": "Close" }, "×"));
    document.body.append(lightbox);
  }
  lightbox.querySelector("img").src = src;
  lightbox.querySelector("img").alt = caption;
  lightbox.querySelector("p").textContent = caption;
  lightbox.showModal();
}

export function screenshotSlot(file) {
  return el("figure", { className: "shot", "data-file": file.name },
    el("div", { className: "thumb placeholder" }, "Loading…"),
    el("figcaption", {}, el("span", { className: "name" }, file.name), badge("pending")));
}

// `src` is a blob: URL of the bytes that were just hashed, so what is shown is
// exactly what was verified (and the presigned URL is used once).
export function fillScreenshot(slot, src, name) {
  const img = el("img", { src, alt: `Screenshot ${name}`, testid: "screenshot", loading: "lazy" });
  slot.querySelector(".thumb").replaceWith(el("button", {
    type: "button", className: "thumb", title: "Click to enlarge", onclick: () => openLightbox(src, name),
  }, img));
}

export function logSlot(file, index) {
  // The first logs open; a ticket with many stays scannable.
  return el("details", { className: "log", "data-file": file.name, open: index < 2 },
    el("summary", {}, el("span", { className: "name" }, file.name),
      el("span", { className: "muted" }, formatBytes(file.size)), badge("pending")),
    el("pre", { testid: "log" }, "Loading…"));
}

export function fillLog(slot, bytes, file = null) {
  const shown = bytes.subarray(0, LIMITS.logBytes);
  const pre = slot.querySelector("pre");
  const text = new TextDecoder("utf-8").decode(shown);
  pre.textContent = text;
  if (bytes.length > shown.length) {
    slot.append(emptyNote(`Showing the first ${formatBytes(shown.length)} of ${formatBytes(bytes.length)}.`));
  }
  pre.before(logToolbar(pre, text, bytes, file));
}

// Search within a log (the matching lines, with their numbers), wrap long lines,
// download the bytes that were checked.
function logToolbar(pre, text, bytes, file) {
  const lines = text.split("\n");
  const count = el("span", { className: "muted", testid: "log-matches" });
  const search = el("input", {
    type: "search", placeholder: "Search this log", "aria-label": "Search this log", testid: "log-search",
    oninput: () => {
      const needle = search.value.toLowerCase();
      if (!needle) {
        pre.textContent = text;
        count.textContent = "";
        return;
      }
      const hits = [];
      lines.forEach((line, i) => { if (line.toLowerCase().includes(needle)) hits.push(`${i + 1}: ${line}`); });
      pre.textContent = hits.join("\n");
      count.textContent = `${hits.length} matching line${hits.length === 1 ? "" : "s"} of ${lines.length}`;
    },
  });
  const wrap = el("input", { type: "checkbox", testid: "log-wrap",
    onchange: () => pre.classList.toggle("wrap", wrap.checked) });
  const download = el("button", { type: "button", className: "small", testid: "log-download", onclick: () => {
    const url = URL.createObjectURL(new Blob([bytes], { type: file?.contentType || "text/plain" }));
    const link = el("a", { href: url, download: file?.name || "log.txt", hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } }, "Download");
  return el("div", { className: "toolbar log-tools" }, search, el("label", { className: "inline" }, wrap, " Wrap lines"),
    download, count);
}

export function setSlotStatus(slot, status, message = null) {
  slot.querySelector(".badge").replaceWith(badge(status));
  if (message) {
    const target = slot.querySelector("pre") || slot.querySelector(".thumb");
    target.textContent = message;
  }
}

// --- the resource-use chart (SVG) ---------------------------------------------------

const SERIES = [
  { key: "cpu_percent", label: "CPU", className: "series-cpu" },
  { key: "memory_percent", label: "Memory", className: "series-memory" },
];

// The chart's viewBox and its margins (left, right, top, bottom) for the axes' labels.
const W = 800, H = 280, L = 48, R = 16, T = 40, B = 36;

// The samples that have a time, oldest first.
function timedSamples(usage) {
  return list(usage.samples, LIMITS.samples).map(obj).filter((s) => num(s.t) != null).sort((a, b) => a.t - b.t);
}

// Where a time and a percentage go on the chart, and how a time is labelled:
// a clock time if the report says when sampling started, else seconds from the first.
function chartScale(samples, startedAt) {
  const t0 = samples[0].t, span = Math.max(1, samples.at(-1).t - t0);
  const startedMs = new Date(str(startedAt, 64)).getTime();
  return {
    t0, span,
    x: (t) => L + ((t - t0) / span) * (W - L - R),
    y: (p) => T + (1 - Math.min(100, Math.max(0, p)) / 100) * (H - T - B),
    label: (t) => (Number.isNaN(startedMs) ? `+${Math.round(t)} s` : CLOCK.format(new Date(startedMs + t * 1000))),
  };
}

function drawPercentAxis(chart, { y }) {
  for (const p of [0, 25, 50, 75, 100]) {
    chart.append(svg("line", { x1: L, x2: W - R, y1: y(p), y2: y(p), className: p ? "grid" : "axis" }),
      svg("text", { x: L - 8, y: y(p) + 4, className: "tick", "text-anchor": "end" }, `${p}%`));
  }
  chart.append(svg("line", { x1: L, x2: L, y1: T, y2: H - B, className: "axis" }));
}

function drawTimeAxis(chart, { t0, span, x, label }) {
  for (let i = 0; i <= 5; i += 1) {
    const t = t0 + (span * i) / 5;
    chart.append(svg("line", { x1: x(t), x2: x(t), y1: H - B, y2: H - B + 5, className: "axis" }),
      svg("text", { x: x(t), y: H - B + 20, className: "tick", "text-anchor": i === 5 ? "end" : "middle" }, label(t)));
  }
}

// One series as an SVG path: a gap in the data (a missing value) starts a new segment.
function seriesPath(samples, key, { x, y }) {
  let d = "", pen = "M";
  for (const s of samples) {
    const v = num(s[key]);
    if (v == null) { pen = "M"; continue; }
    d += `${pen}${x(s.t).toFixed(1)},${y(v).toFixed(1)} `;
    pen = "L";
  }
  return d.trim();
}

function drawLegend(chart) { // top left
  SERIES.forEach((series, i) => {
    const lx = L + i * 110;
    chart.append(svg("rect", { x: lx, y: 12, width: 14, height: 4, className: `swatch ${series.className}` }),
      svg("text", { x: lx + 20, y: 18, className: "legend" }, series.label));
  });
}

// A guide line and a readout that follow the pointer to the nearest sample.
// Returns the readout, which goes under the chart.
function attachPointerReadout(chart, samples, { t0, span, x, label }) {
  const guide = svg("line", { y1: T, y2: H - B, className: "guide", visibility: "hidden" });
  const readout = el("p", { className: "readout muted", "aria-live": "polite" }, "Point at the chart to read values.");
  const overlay = svg("rect", { x: L, y: T, width: W - L - R, height: H - T - B, className: "overlay" });
  overlay.addEventListener("pointermove", (event) => {
    const box = chart.getBoundingClientRect();
    const t = t0 + (((event.clientX - box.left) / box.width) * W - L) / (W - L - R) * span;
    const s = samples.reduce((best, c) => (Math.abs(c.t - t) < Math.abs(best.t - t) ? c : best));
    guide.setAttribute("x1", x(s.t)); guide.setAttribute("x2", x(s.t)); guide.setAttribute("visibility", "visible");
    readout.textContent = `${label(s.t)} — CPU ${formatNumber(num(s.cpu_percent))} % · memory ${formatNumber(num(s.memory_percent))} % · disk ${formatNumber(num(s.disk_io_kbps), 0)} KB/s`;
  });
  chart.append(guide, overlay);
  return readout;
}

function usageSummary(samples, intervalSeconds) {
  const values = (key) => samples.map((s) => num(s[key])).filter((v) => v != null);
  const peak = (key) => formatNumber(values(key).length ? Math.max(...values(key)) : null, 0);
  const cpu = values("cpu_percent");
  const average = cpu.length ? cpu.reduce((a, b) => a + b, 0) / cpu.length : null;
  return `CPU average ${formatNumber(average, 0)} %, peak ${peak("cpu_percent")} % · memory peak ${peak("memory_percent")} % · disk I/O peak ${peak("disk_io_kbps")} KB/s · ${samples.length} samples every ${formatNumber(num(intervalSeconds), 1)} s`;
}

export function renderChart(body, usage) {
  usage = obj(usage);
  const samples = timedSamples(usage);
  if (samples.length < 2) return body.replaceChildren(emptyNote("No resource samples in this report."));

  const scale = chartScale(samples, usage.started_at);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, className: "chart", role: "img", testid: "resource-chart",
    "aria-label": "CPU and memory use over time, percent" }, svg("title", {}, "CPU and memory use (%)"));
  drawPercentAxis(chart, scale);
  drawTimeAxis(chart, scale);
  for (const series of SERIES) {
    chart.append(svg("path", { d: seriesPath(samples, series.key, scale), className: `line ${series.className}` }));
  }
  drawLegend(chart);
  const readout = attachPointerReadout(chart, samples, scale);
  body.replaceChildren(
    el("p", { className: "stats" }, usageSummary(samples, usage.interval_seconds)),
    el("div", { className: "chart-box" }, chart),
    readout,
  );
}
