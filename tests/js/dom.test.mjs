import assert from "node:assert/strict";
import { test } from "node:test";

import { installFakeDocument } from "./fake-dom.mjs";
import {
  DASH, el, formatBytes, formatDuration, formatId, formatNumber, formatTime, humanize, list, num, obj, showBanner,
  str, svg,
} from "../../static/js/lib/dom.js";

installFakeDocument();
const local = (n, digits) => n.toLocaleString(undefined, { maximumFractionDigits: digits });

test("str keeps strings (cut), finite numbers and booleans, and nothing else", () => {
  assert.equal(str("abcdef", 3), "abc");
  assert.equal(str(42), "42");
  assert.equal(str(true), "yes");
  assert.equal(str(false), "no");
  for (const value of [null, undefined, NaN, Infinity, {}, [], () => 1]) assert.equal(str(value), "");
  assert.equal(str("x".repeat(3000)).length, 2000);
});

test("num, list and obj refuse values of the wrong type", () => {
  assert.equal(num(1.5), 1.5);
  assert.equal(num("1.5"), null);
  assert.equal(num(NaN), null);
  assert.deepEqual(list([1, 2, 3], 2), [1, 2]);
  assert.deepEqual(list({ length: 2 }, 5), []);
  assert.deepEqual(obj([1]), {});
  assert.deepEqual(obj(null), {});
  const o = { a: 1 };
  assert.equal(obj(o), o);
});

test("formatBytes picks the unit and keeps whole bytes whole", () => {
  assert.equal(formatBytes(null), DASH);
  assert.equal(formatBytes(0), "0 bytes");
  assert.equal(formatBytes(1023), `${local(1023, 0)} bytes`);
  assert.equal(formatBytes(1536), `${local(1.5, 1)} KB`);
  assert.equal(formatBytes(5 * 1024 * 1024), "5 MB");
  assert.equal(formatBytes(3 * 1024 ** 4), `${local(3072, 1)} GB`); // no unit above GB
});

test("formatDuration, formatId, formatNumber and humanize", () => {
  assert.equal(formatDuration(null), DASH);
  assert.equal(formatDuration(59), "0 min");
  assert.equal(formatDuration(3 * 3600 + 120), "3 h 2 min");
  assert.equal(formatDuration(2 * 86400 + 5 * 3600 + 59), "2 d 5 h");
  assert.equal(formatId(12345), "12345"); // no digit grouping
  assert.equal(formatId(null), DASH);
  assert.equal(formatNumber(null), DASH);
  assert.equal(formatNumber(2.25, 1), local(2.25, 1));
  assert.equal(humanize("event_log_level"), "Event log level");
  assert.equal(humanize("_"), "_");
});

test("formatTime shows what is not a time as it is, cut short", () => {
  assert.equal(formatTime("not a time"), "not a time");
  assert.equal(formatTime(undefined), DASH);
  assert.equal(formatTime("y".repeat(100)), "y".repeat(64));
  const format = { format: (date) => `at ${date.toISOString()}` };
  assert.equal(formatTime("2026-11-23T08:25:00Z", format), "at 2026-11-23T08:25:00.000Z");
});

test("el makes data text, never markup, and skips empty props and children", () => {
  const clicks = [];
  const node = el("p", { className: "x", testid: "t", title: null, hidden: false, open: true, onclick: (e) => clicks.push(e) },
    "<img src=x onerror=alert(1)>", null, false, ["a", el("b", {}, "bold")]);
  assert.equal(node.serialize(),
    '<p class="x" data-testid="t" open=""><img src=x onerror=alert(1)>a<b>bold</b></p>'.replace("<img", "&lt;img"));
  assert.equal(node.findAll("img").length, 0);
  node.listeners.click[0]("event");
  assert.deepEqual(clicks, ["event"]);
  assert.equal(svg("path", { d: "M0,0" }).namespace, "http://www.w3.org/2000/svg");
});

test("showBanner shows a title and the details that are there", () => {
  const banner = el("div");
  banner.hidden = true;
  showBanner(banner, "Refused", ["why", null, "", "what to do"]);
  assert.equal(banner.hidden, false);
  assert.equal(banner.serialize(), "<div><strong>Refused</strong><p>why</p><p>what to do</p></div>");
});
