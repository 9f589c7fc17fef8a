import assert from "node:assert/strict";
import { test } from "node:test";

import { load } from "./static.mjs";

const calibration = await load("calibration.js");
const config = await load("config.js");

// A `val/confidence` histogram as the read API sends it (non-finite values as strings).
const hist = { step: 40, edges: [0, 0.5, 1], counts: [4, 6], correct: [1, 6], conf_sum: [1.6, 5.1] };

test("stats: per-bin accuracy and confidence, and the exact ECE", () => {
  const s = calibration.stats(hist);
  assert.equal(s.step, 40);
  assert.equal(s.n, 10);
  assert.equal(s.acc, 0.7);
  assert.ok(Math.abs(s.meanConf - 0.67) < 1e-12);
  // sum over bins of |correct - conf_sum| / N
  assert.ok(Math.abs(s.ece - (Math.abs(1 - 1.6) + Math.abs(6 - 5.1)) / 10) < 1e-12);
  assert.equal(calibration.ece(hist), s.ece);
  assert.deepEqual(s.bins.map((b) => [b.lo, b.hi, b.center, b.count]), [[0, 0.5, 0.25, 4], [0.5, 1, 0.75, 6]]);
  assert.equal(s.bins[0].acc, 0.25);
  assert.ok(Math.abs(s.bins[1].conf - 0.85) < 1e-12);
});

test("stats without correctness has counts but no accuracy or ECE", () => {
  const s = calibration.stats({ step: 1, edges: [0, 1], counts: [3] });
  assert.equal(s.n, 3);
  assert.equal(s.acc, null);
  assert.equal(s.meanConf, null);
  assert.equal(s.ece, null);
  assert.equal(calibration.stats({ step: 1, edges: [0, 1], counts: [0], correct: [0], conf_sum: [0] }).ece, null);
});

test("a NaN count shows as NaN, not as an empty bin", () => {
  const s = calibration.stats({ step: 1, edges: [0, 0.5, 1], counts: ["NaN", 2], correct: [0, 1], conf_sum: [0, 1.5] });
  assert.ok(Number.isNaN(s.bins[0].count));
  assert.ok(Number.isNaN(s.n));
});

test("config.flatten spreads nested objects into dotted paths, keeps plain arrays whole", () => {
  const flat = config.flatten({ lr: 0.1, opt: { name: "adam", betas: [0.9, 0.99] }, groups: [{ lr: 1 }, { lr: 2 }], empty: {} });
  assert.deepEqual(flat, [
    ["lr", 0.1], ["opt.name", "adam"], ["opt.betas", [0.9, 0.99]], ["groups.0.lr", 1], ["groups.1.lr", 2], ["empty", {}],
  ]);
  assert.deepEqual(config.flatten(null), []);
});

test("config.show: strings as typed, numbers for people, the rest as JSON", () => {
  assert.equal(config.show("a b"), "a b");
  assert.equal(config.show(0.1234567), "0.123457");
  assert.equal(config.show(NaN), "NaN");
  assert.equal(config.show(true), "true");
  assert.equal(config.show([1, 2]), "[1,2]");
  assert.equal(config.show(undefined), "");
});
