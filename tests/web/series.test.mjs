import assert from "node:assert/strict";
import { test } from "node:test";

import { load } from "./static.mjs";

const { Series, ema } = await load("series.js");

// A read-API answer for a series, as /runs/{id}/series sends it.
const raw = (steps, values, extra = {}) => ({ steps, values, total: steps.length, ...extra });

test("unpack decodes values and marks raw points' min and max as missing", () => {
  const d = Series.unpack(raw([0, 1, 2], [1, "NaN", "Infinity"]));
  assert.deepEqual(d.x, [0, 1, 2]);
  assert.equal(d.y[0], 1);
  assert.ok(Number.isNaN(d.y[1]));
  assert.equal(d.y[2], Infinity);
  assert.deepEqual(d.lo, [null, null, null]);
  assert.deepEqual(d.hi, [null, null, null]);
  assert.equal(d.reduced, false);
  assert.equal(d.last, 2);
  assert.equal(Series.unpack(raw([], [])).last, -1);
});

test("unpack keeps a reduction's bucket extremes and the last step it covers", () => {
  const d = Series.unpack(raw([0, 10], [1, 2], { reduced: true, min: [0.5, "-Infinity"], max: [1.5, 3], last_step: 19, total: 20 }));
  assert.equal(d.reduced, true);
  assert.deepEqual(d.lo, [0.5, -Infinity]);
  assert.deepEqual(d.hi, [1.5, 3]);
  assert.equal(d.last, 19);
  assert.equal(d.total, 20);
});

test("append adds only steps past what the series holds, decoding strings", () => {
  const s = new Series("r", "train/loss");
  assert.equal(s.append([0, 1, 2], [3, 2, "NaN"]), 3);
  assert.equal(s.append([1, 2, 3], [9, 9, 1]), 1);
  assert.deepEqual(s.x, [0, 1, 2, 3]);
  assert.deepEqual(s.y.slice(0, 2), [3, 2]);
  assert.ok(Number.isNaN(s.y[2]));
  assert.equal(s.total, 4);
  assert.equal(s.lastValue(), 1);
  const v = s.version;
  assert.equal(s.append([3], [5]), 0);
  assert.equal(s.version, v, "nothing new: no redraw");
});

test("an overview replaces what was held and keeps live points past it", () => {
  const s = new Series("r", "k");
  s.append([0, 1, 2, 3, 4], [5, 4, 3, 2, 1]);
  s.takeOverview(Series.unpack(raw([0, 2], [4.5, 2.5], { reduced: true, min: [4, 2], max: [5, 3], last_step: 3, total: 4 })));
  assert.deepEqual(s.x, [0, 2, 4]);
  assert.deepEqual(s.y, [4.5, 2.5, 1]);
  assert.deepEqual(s.lo, [4, 2, null]);
  assert.deepEqual(s.hi, [5, 3, null]);
  assert.equal(s.total, 5);
  assert.equal(s.covered, 3);
  assert.equal(s.lastStep, 4);
  assert.ok(s.loaded);
  // live points the overview already covers are not appended again
  assert.equal(s.append([3, 4, 5], [0, 0, 7]), 1);
  assert.deepEqual(s.x, [0, 2, 4, 5]);
});

test("lastStep counts the overview's cover even past its last bucket start", () => {
  const s = new Series("r", "k");
  s.takeOverview(Series.unpack(raw([0, 100], [1, 2], { reduced: true, min: [1, 2], max: [1, 2], last_step: 199 })));
  assert.equal(s.lastStep, 199);
  assert.equal(s.append([150, 200], [1, 2]), 1);
});

test("a zoom's detail is drawn in place of the overview's points in its range", () => {
  const s = new Series("r", "k");
  s.takeOverview(Series.unpack(raw([0, 10, 20, 30], [1, 2, 3, 4], { reduced: true, min: [1, 2, 3, 4], max: [1, 2, 3, 4], last_step: 39 })));
  s.takeDetail(10, 20, Series.unpack(raw([10, 12, 14, 16, 18, 20], [2, 2.1, 2.2, 2.3, 2.4, 3])));
  const v = s.view();
  assert.deepEqual(v.x, [0, 10, 12, 14, 16, 18, 20, 30]);
  assert.deepEqual(v.y, [1, 2, 2.1, 2.2, 2.3, 2.4, 3, 4]);
  assert.deepEqual(v.lo, [1, null, null, null, null, null, null, 4]);
  assert.equal(v.reduced, true);
  s.clearDetail();
  assert.deepEqual(s.view().x, [0, 10, 20, 30]);
});

test("needsDetail: only a reduced series, and only beyond a detail that covers the zoom", () => {
  const s = new Series("r", "k");
  s.append([0, 1, 2], [1, 2, 3]);
  assert.equal(s.needsDetail(0, 1), false, "raw points are all there");
  s.takeOverview(Series.unpack(raw([0, 50], [1, 2], { reduced: true, min: [1, 2], max: [1, 2], last_step: 99 })));
  assert.equal(s.needsDetail(10, 20), true);
  s.takeDetail(0, 60, Series.unpack(raw([0, 1], [1, 1])));
  assert.equal(s.needsDetail(10, 20), false, "a raw detail of a wider range holds every point");
  assert.equal(s.needsDetail(10, 70), true);
  s.takeDetail(0, 60, Series.unpack(raw([0, 30], [1, 1], { reduced: true, min: [1, 1], max: [1, 1] })));
  assert.equal(s.needsDetail(0, 60), false);
  assert.equal(s.needsDetail(10, 20), true, "a reduced detail of a wider range is too coarse");
});

test("best skips non-finite values; lastValue reports them", () => {
  const s = new Series("r", "k");
  s.append([0, 1, 2, 3], [0.5, "NaN", 0.2, "Infinity"]);
  assert.equal(s.best("min"), 0.2);
  assert.equal(s.best("max"), 0.5);
  assert.equal(s.lastValue(), Infinity);
  assert.equal(new Series("r", "k").lastValue(), undefined);
  assert.equal(new Series("r", "k").best("min"), undefined);
});

test("url asks the read API for the series by key", () => {
  const s = new Series("run 1", "grad_norm/a.b");
  assert.match(s.url("after=3"), /\/runs\/run%201\/series\?key=grad_norm%2Fa\.b&after=3$/);
});

test("ema is TensorBoard's debiased moving average", () => {
  assert.deepEqual(ema([1, 2, 3], 0), [1, 2, 3]);
  const out = ema([1, 1, 1], 0.9);
  for (const v of out) assert.ok(Math.abs(v - 1) < 1e-12, "debiased: a constant stays itself");
  const [a, b] = ema([0, 10], 0.5);
  assert.equal(a, 0);
  assert.ok(Math.abs(b - (0.5 * 0 * 0.5 + 0.5 * 10) / (1 - 0.25)) < 1e-12);
});

test("ema carries over non-finite points without being poisoned", () => {
  const out = ema([NaN, 2, Infinity, 2], 0.6);
  assert.equal(out[0], null, "nothing seen yet");
  assert.ok(Math.abs(out[1] - 2) < 1e-12);
  assert.ok(Math.abs(out[2] - 2) < 1e-12);
  assert.ok(Math.abs(out[3] - 2) < 1e-12);
});
