import assert from "node:assert/strict";
import { afterEach, test } from "node:test";

import { installFakeDocument } from "./fake-dom.mjs";
import { fetchObject, parseStorageError, signAll, storageHint } from "../../static/js/report/api.js";
import { renderChart, renderDetails, renderSystemInfo } from "../../static/js/report/render.js";
import { el } from "../../static/js/lib/dom.js";

installFakeDocument();
const realFetch = globalThis.fetch;
afterEach(() => { globalThis.fetch = realFetch; });

test("storage's common codes have hints; anything else has none", () => {
  assert.match(storageHint("AccessDenied"), /did not accept the signed link/);
  assert.match(storageHint("KMS.DisabledException"), /encryption key is disabled/);
  for (const code of ["hasOwnProperty", "accessdenied", null, 7]) assert.equal(storageHint(code), null);
});

test("a body that is not S3's XML error gives no code", () => {
  const none = { code: null, message: null, requestId: null };
  assert.deepEqual(parseStorageError("Forbidden"), none);
  assert.deepEqual(parseStorageError(null), none);
  // Node has no DOMParser: even XML is then not read (the browser tests read it).
  assert.deepEqual(parseStorageError("<Error><Code>AccessDenied</Code></Error>"), none);
});

test("signAll makes one /v1/sign call and wants one result per op", async () => {
  const ops = [{ op: "list", prefix: "tickets/1/" }, { op: "get", key: "tickets/1/report.json" }];
  const bodies = [];
  globalThis.fetch = async (url, options) => {
    bodies.push([url, JSON.parse(options.body)]);
    return new Response(JSON.stringify({ results: [{ objects: [] }, { url: "https://s3/x" }] }));
  };
  assert.deepEqual(await signAll("https://gk", "G", ops), [{ objects: [] }, { url: "https://s3/x" }]);
  assert.deepEqual(bodies, [["https://gk/v1/sign", { ops }]]);
  globalThis.fetch = async () => new Response(JSON.stringify({ results: [{}] }));
  await assert.rejects(signAll("https://gk", "G", ops), { source: "gatekeeper", message: "The gatekeeper's answer is malformed." });
});

test("fetchObject returns the bytes, and storage's refusal with its status", async () => {
  globalThis.fetch = async (url, options) => {
    assert.equal(options.credentials, "omit");
    assert.equal(options.referrerPolicy, "no-referrer");
    return new Response(new Uint8Array([1, 2, 3]));
  };
  assert.deepEqual(await fetchObject("https://s3/x", 3), new Uint8Array([1, 2, 3]));
  await assert.rejects(fetchObject("https://s3/x", 2), { name: "TooLargeError", limit: 2 });
  globalThis.fetch = async () => new Response("<Error/>", { status: 403 });
  await assert.rejects(fetchObject("https://s3/x"), { source: "storage", status: 403, message: "The customer's storage refused (HTTP 403)." });
  globalThis.fetch = async () => { throw new TypeError("Failed to fetch"); };
  await assert.rejects(fetchObject("https://s3/x"), { message: "Could not reach the customer's storage." });
});

test("the machine table puts known keys first and does not trust the prototype", () => {
  const body = el("div");
  renderDetails(body, { user: { name: "Ann" }, machine: { zeta: 1, constructor: "x", os: "Linux", memory_total_mb: 2048 } });
  const machine = body.findAll("table")[1];
  const rows = machine.findAll("tr").map((tr) => tr.children.map((c) => c.textContent));
  assert.deepEqual(rows.map((r) => r[0]), ["Operating system", "Memory", "Zeta", "Constructor"]);
  assert.equal(rows[2][1], "1");
});

test("system information shows each section as a table, cut and typed", () => {
  const body = el("div");
  renderSystemInfo(body, [{ title: "Disks", rows: [["C:", "100 GB"], [{}, 5], "junk"] }, null]);
  const tables = body.findAll("table");
  assert.equal(tables.length, 2);
  assert.equal(tables[0].findAll("caption")[0].textContent, "Disks");
  assert.deepEqual(tables[0].findAll("tr").map((tr) => tr.textContent), ["C:100 GB", "—5", "——"]);
  assert.equal(tables[1].findAll("caption")[0].textContent, "Untitled");
  renderSystemInfo(body, "not a list");
  assert.equal(body.textContent, "No system information in this report.");
});

const USAGE = {
  interval_seconds: 10,
  // Out of order, a gap in CPU, and a sample without a time (dropped).
  samples: [{ t: 20, cpu_percent: 50, memory_percent: 40 }, { t: "x", cpu_percent: 99 },
    { t: 0, cpu_percent: 10, memory_percent: 20 }, { t: 10, cpu_percent: null, memory_percent: 30 }],
};

test("the chart draws each series, breaking the line at a gap", () => {
  const body = el("div");
  renderChart(body, USAGE);
  const [chart] = body.findAll("svg");
  const paths = chart.findAll("path").map((p) => [p.getAttribute("class"), p.getAttribute("d")]);
  assert.deepEqual(paths, [
    ["line series-cpu", "M48.0,223.6 M784.0,142.0"],
    ["line series-memory", "M48.0,203.2 L416.0,182.8 L784.0,162.4"],
  ]);
  assert.equal(chart.getAttribute("viewBox"), "0 0 800 280");
  assert.equal(chart.getAttribute("data-testid"), "resource-chart");
});

test("the chart has percent gridlines, six time ticks, a legend and the stats", () => {
  const body = el("div");
  renderChart(body, USAGE);
  const [chart] = body.findAll("svg");
  const texts = chart.findAll("text").map((t) => t.textContent);
  assert.deepEqual(texts, ["0%", "25%", "50%", "75%", "100%", "+0 s", "+4 s", "+8 s", "+12 s", "+16 s", "+20 s", "CPU", "Memory"]);
  const lines = chart.findAll("line");
  assert.equal(lines.length, 5 + 1 + 6 + 1); // gridlines, the y axis, the x ticks, the guide
  assert.deepEqual(lines.slice(0, 5).map((l) => [l.getAttribute("class"), l.getAttribute("y1")]),
    [["axis", "244"], ["grid", "193"], ["grid", "142"], ["grid", "91"], ["grid", "40"]]);
  assert.equal(chart.findAll("text")[10].getAttribute("text-anchor"), "end");
  assert.equal(body.findAll("p")[0].textContent,
    "CPU average 30 %, peak 50 % · memory peak 40 % · disk I/O peak — KB/s · 3 samples every 10 s");
});

test("the chart's time ticks are clock times when the report says when it started", () => {
  const body = el("div");
  renderChart(body, { ...USAGE, started_at: "2026-11-23T08:00:00Z" });
  const clock = new Intl.DateTimeFormat(undefined, { timeStyle: "medium" });
  const ticks = body.findAll("svg")[0].findAll("text").slice(5, 11).map((t) => t.textContent);
  assert.equal(ticks[0], clock.format(new Date("2026-11-23T08:00:00Z")));
  assert.equal(ticks[5], clock.format(new Date("2026-11-23T08:00:20Z")));
});

test("pointing at the chart moves the guide to the nearest sample and reads it out", () => {
  const body = el("div");
  renderChart(body, USAGE);
  const [chart] = body.findAll("svg");
  chart.getBoundingClientRect = () => ({ left: 0, width: 800 });
  const overlay = chart.findAll("rect").find((r) => r.getAttribute("class") === "overlay");
  overlay.listeners.pointermove[0]({ clientX: 700 }); // nearer t = 20 than t = 10
  const guide = chart.findAll("line").at(-1);
  assert.equal(guide.getAttribute("x1"), "784");
  assert.equal(guide.getAttribute("visibility"), "visible");
  assert.equal(body.findAll("p")[1].textContent, "+20 s — CPU 50 % · memory 40 % · disk — KB/s");
});

test("fewer than two timed samples is no chart", () => {
  const body = el("div");
  renderChart(body, { samples: [{ t: 1, cpu_percent: 5 }, { cpu_percent: 6 }] });
  assert.equal(body.findAll("svg").length, 0);
  assert.equal(body.textContent, "No resource samples in this report.");
  renderChart(body, "nonsense");
  assert.equal(body.textContent, "No resource samples in this report.");
});
