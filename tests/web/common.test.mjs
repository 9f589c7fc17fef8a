import assert from "node:assert/strict";
import { test } from "node:test";

import { load } from "./static.mjs";

const common = await load("common.js");
const protocol = await load("protocol.js");

test("decode turns the wire's non-finite strings into numbers and keeps the rest", () => {
  const out = common.decode([1.5, "NaN", "Infinity", "-Infinity", 0, null]);
  assert.equal(out[0], 1.5);
  assert.ok(Number.isNaN(out[1]));
  assert.equal(out[2], Infinity);
  assert.equal(out[3], -Infinity);
  assert.equal(out[4], 0);
  assert.equal(out[5], null);
  assert.equal(common.decode(null), null);
  assert.equal(common.decode(undefined), undefined);
});

test("decode reads the strings protocol.js names", () => {
  const names = Object.keys(protocol.NON_FINITE);
  assert.deepEqual(names.sort(), ["-Infinity", "Infinity", "NaN"]);
  assert.deepEqual(common.decode(["Infinity", "-Infinity"]), [Infinity, -Infinity]);
});

test("num spells out non-finite values and never leaves a blank", () => {
  assert.equal(common.num(null), "–");
  assert.equal(common.num(undefined), "–");
  assert.equal(common.num(NaN), "NaN");
  assert.equal(common.num(Infinity), "+Inf");
  assert.equal(common.num(-Infinity), "−Inf");
  assert.equal(common.num(42), "42");
  assert.equal(common.num(0), "0");
  assert.equal(common.num(0.123456), "0.1235");
  assert.equal(common.num(0.123456, 2), "0.12");
  assert.equal(common.num(0.0001234), "1.23e-4");
  assert.equal(common.num(123456.7), "1.23e+5");
  assert.equal(common.num(2e6), "2.00e+6");
  assert.equal(common.num("text"), "text");
});

test("pct formats finite fractions and falls back to num", () => {
  assert.equal(common.pct(0.1234), "12.3%");
  assert.equal(common.pct(1), "100.0%");
  assert.equal(common.pct(NaN), "NaN");
  assert.equal(common.pct(null), "–");
});

test("duration reads like a person would say it", () => {
  assert.equal(common.duration(-1), "");
  assert.equal(common.duration(NaN), "");
  assert.equal(common.duration(0), "0s");
  assert.equal(common.duration(59_400), "59s");
  assert.equal(common.duration(61_000), "1m 1s");
  assert.equal(common.duration(3_600_000 + 5 * 60_000), "1h 5m");
  assert.equal(common.duration(50 * 3_600_000), "2d 2h");
});

test("plotText escapes the markup Plotly would render", () => {
  assert.equal(common.plotText("<b>a & b</b>"), "&lt;b&gt;a &amp; b&lt;/b&gt;");
  assert.equal(common.plotText(3), "3");
});

test("runPath builds the run's API path with its id encoded", () => {
  assert.equal(common.runPath("a/b c"), `${protocol.PATHS.RUNS}/a%2Fb%20c`);
  assert.equal(common.runPath("r1", "/alerts"), `${protocol.PATHS.RUNS}/r1/alerts`);
  assert.equal(protocol.PATHS.RUNS, `${protocol.API_PREFIX}/runs`);
});

test("severityColor picks the theme's colour per severity", () => {
  const t = { crit: "red", warn: "orange", info: "blue" };
  assert.equal(common.severityColor(t, "critical"), "red");
  assert.equal(common.severityColor(t, "warning"), "orange");
  assert.equal(common.severityColor(t, "info"), "blue");
});
