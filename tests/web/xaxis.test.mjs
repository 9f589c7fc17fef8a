import assert from "node:assert/strict";
import { test } from "node:test";

import { load } from "./static.mjs";

const xaxis = await load("xaxis.js");
const { KEYS, PREFIXES } = await load("protocol.js");

// A loaded series as the x axis reads it (raw points: no bucket minimum).
const series = (x, y, lo = x.map(() => null)) => ({ x, y, lo });
const close = (a, b) => assert.ok(Math.abs(a - b) < 1e-9, `${a} != ${b}`);

test("interp is linear inside, extrapolated with the end segments' rate outside", () => {
  const xs = [0, 10, 20], ys = [100, 200, 400];
  close(xaxis.interp(xs, ys, 5), 150);
  close(xaxis.interp(xs, ys, 15), 300);
  close(xaxis.interp(xs, ys, 20), 400);
  close(xaxis.interp(xs, ys, -10), 0);
  close(xaxis.interp(xs, ys, 30), 600);
  assert.ok(Number.isNaN(xaxis.interp([], [], 1)));
  assert.equal(xaxis.interp([3], [7], 100), 7);
  assert.equal(xaxis.interp([0, 0], [1, 5], 0), 1, "a zero-width segment does not divide by zero");
});

test("table keeps a monotone (step, value) table, bucket minimums first", () => {
  assert.equal(xaxis.table(null), null);
  assert.equal(xaxis.table(series([], [])), null);
  // a NaN, a value going back and a repeated step are left out
  const t = xaxis.table(series([0, 1, 2, 2, 3, 4], [10, NaN, 12, 15, 11, 13]));
  assert.deepEqual(t, { xs: [0, 2, 4], ys: [10, 12, 13] });
  const r = xaxis.table(series([0, 10], [5, 15], [4, 14]));
  assert.deepEqual(r, { xs: [0, 10], ys: [4, 14] });
});

test("the wall-clock and epoch keys come from the protocol", () => {
  assert.equal(xaxis.WALL_KEY, KEYS.TIME_WALL);
  assert.deepEqual(xaxis.EPOCH_KEYS, [KEYS.EPOCH, `${PREFIXES.TRAIN}${KEYS.EPOCH}`]);
  assert.equal(xaxis.epochKey(new Set([`${PREFIXES.TRAIN}${KEYS.EPOCH}`, "x"])), `${PREFIXES.TRAIN}${KEYS.EPOCH}`);
  assert.equal(xaxis.epochKey(new Set([KEYS.EPOCH, `${PREFIXES.TRAIN}${KEYS.EPOCH}`])), KEYS.EPOCH);
  assert.equal(xaxis.epochKey(new Set(["x"])), null);
});

test("make falls back to steps when the mode's series is missing", () => {
  for (const mode of ["step", "relative", "wall", "epoch"]) {
    const ax = xaxis.make(mode);
    assert.equal(ax.mode, "step");
    assert.equal(ax.map(7), 7);
    assert.equal(ax.toStep("8"), 8);
    assert.deepEqual(ax.available, { step: true, relative: false, wall: false, epoch: false });
  }
});

test("epoch mode maps steps to epochs and a zoom back to steps", () => {
  const ax = xaxis.make("epoch", { epoch: series([0, 100, 200], [0, 1, 2]) });
  assert.equal(ax.mode, "epoch");
  assert.equal(ax.title, "epoch");
  close(ax.map(150), 1.5);
  close(ax.toStep(0.5), 50);
  assert.equal(ax.available.epoch, true);
  assert.equal(ax.available.wall, false);
});

test("relative mode counts from the run's start, in a unit that fits the span", () => {
  const wall = series([0, 100], [1000, 1000 + 3 * 3600]);
  const ax = xaxis.make("relative", { wall, startSec: 1000 - 3600 });
  assert.equal(ax.title, "time since start (h)");
  close(ax.map(0), 1);
  close(ax.map(100), 4);
  close(ax.toStep(2.5), 50);
  // a start after the first clock reading is ignored (the first reading is the start)
  const late = xaxis.make("relative", { wall: series([0, 10], [0, 30]), startSec: 5 });
  assert.equal(late.title, "time since start (s)");
  close(late.map(10), 30);
  assert.equal(xaxis.make("relative", { wall: series([0, 10], [0, 600]) }).title, "time since start (min)");
});

test("wall mode maps steps to local milliseconds and back", () => {
  const wall = series([0, 100], [1_700_000_000, 1_700_000_100]);
  const ax = xaxis.make("wall", { wall });
  assert.equal(ax.type, "date");
  const ms = ax.map(50);
  close(ax.toStep(ms), 50);
  const d = new Date(ms);
  const text = `${d.toISOString().slice(0, 10)} ${d.toISOString().slice(11, 19)}`; // as Plotly reports it
  close(ax.toStep(text), 50);
});

test("mapView keeps the steps and maps x; mapRange maps a range or keeps none", () => {
  const ax = xaxis.make("epoch", { epoch: series([0, 10], [0, 1]) });
  const v = xaxis.mapView(ax, { x: [0, 5], y: [1, 2] });
  assert.deepEqual(v.steps, [0, 5]);
  assert.deepEqual(v.x, [0, 0.5]);
  const id = xaxis.mapView(xaxis.make("step"), { x: [1, 2], y: [3, 4] });
  assert.deepEqual(id.x, [1, 2]);
  assert.deepEqual(id.steps, [1, 2]);
  assert.deepEqual(xaxis.mapRange(ax, [0, 10]), [0, 1]);
  assert.equal(xaxis.mapRange(ax, null), null);
});

test("parseLocal reads Plotly's zone-less dates as UTC and passes numbers through", () => {
  assert.equal(xaxis.parseLocal(5), 5);
  assert.equal(xaxis.parseLocal("2024-01-02 03:04:05"), Date.UTC(2024, 0, 2, 3, 4, 5));
  assert.equal(xaxis.parseLocal("2024-01-02T03:04:05Z"), Date.UTC(2024, 0, 2, 3, 4, 5));
  assert.equal(xaxis.parseLocal("2024-01-02T03:04:05+01:00"), Date.UTC(2024, 0, 2, 2, 4, 5));
});
