import assert from "node:assert/strict";
import { test } from "node:test";

import { load } from "./static.mjs";

const metrics = await load("metrics.js");
const { KEYS, PREFIXES } = await load("protocol.js");

const EMPTY = () => ({ closed: new Set(), add: new Set(), hide: new Set() });
// The run page's state as far as groups care: its keys (kind from /keys) and run.
const state = (keys, run = null) => ({ keys: new Map(keys.map((k) => [k, { key: k, kind: "scalar" }])), run });
const inChart = (key) => Object.entries(metrics.LINE).filter(([, c]) => c.match(key)).map(([id]) => id);

test("the overview's charts take the protocol's keys", () => {
  assert.deepEqual(inChart(KEYS.TRAIN_LOSS), ["loss"]);
  assert.deepEqual(inChart(KEYS.VAL_LOSS), ["loss"]);
  assert.deepEqual(inChart(`${PREFIXES.TEST}loss`), ["loss"]);
  assert.deepEqual(inChart("eval2/loss"), ["loss"]);
  assert.deepEqual(inChart(KEYS.VAL_ACCURACY), ["loss", "acc"], "a split's accuracy also goes with its loss");
  assert.deepEqual(inChart("mine/accuracy"), ["loss", "acc"]);
  assert.deepEqual(inChart(KEYS.GRAD_NORM_TOTAL), ["grad"]);
  assert.deepEqual(inChart(KEYS.LR_FIRST), ["lr"]);
  assert.deepEqual(inChart(`${PREFIXES.GRAD_NORM}fc.weight`), []);
  assert.deepEqual(inChart("my/loss/extra"), []);
});

test("evaluation keys: any split's loss or accuracy but the training loss", () => {
  assert.equal(metrics.isEvalKey(KEYS.VAL_LOSS), true);
  assert.equal(metrics.isEvalKey(KEYS.VAL_ACCURACY), true);
  assert.equal(metrics.isEvalKey(`${PREFIXES.TRAIN_EVAL}loss`), true);
  assert.equal(metrics.isEvalKey(KEYS.TRAIN_LOSS), false);
  assert.equal(metrics.isEvalKey(KEYS.GRAD_NORM_TOTAL), false);
});

test("layer keys are per-layer gradient norms, in the model's order", () => {
  assert.equal(metrics.isLayerKey(`${PREFIXES.GRAD_NORM}0`), true);
  assert.equal(metrics.isLayerKey(KEYS.GRAD_NORM_TOTAL), false);
  assert.equal(metrics.isLayerKey(`${PREFIXES.PARAM_NORM}0`), false);
  const st = state(["z", "b", "a", "c"].map((n) => PREFIXES.GRAD_NORM + n).concat([KEYS.GRAD_NORM_TOTAL]), {
    config: { fitscope: { layers: { c: {}, a: {} } } },
  });
  assert.deepEqual(metrics.layerKeys(st), ["c", "a", "b", "z"].map((n) => PREFIXES.GRAD_NORM + n));
});

test("colours: fixed per main key, per learning-rate group, one for the rest", () => {
  const t = { palette: ["p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7"] };
  assert.equal(metrics.colorFor(t, KEYS.TRAIN_LOSS), "p0");
  assert.equal(metrics.colorFor(t, KEYS.VAL_LOSS), "p1");
  assert.equal(metrics.colorFor(t, `${PREFIXES.TEST}accuracy`), "p6");
  assert.equal(metrics.colorFor(t, `${PREFIXES.LR}1`), "p4");
  assert.equal(metrics.colorFor(t, `${PREFIXES.LR}6`), "p1", "wraps around the palette");
  assert.equal(metrics.colorFor(t, `${PREFIXES.LR}x`), "p5");
  assert.equal(metrics.colorFor(t, "anything"), "p5");
  assert.equal(metrics.colorFor({ palette: ["a", "b"] }, KEYS.GRAD_NORM_TOTAL), "a");
});

test("groups: by prefix, the protocol's families first, the rest by name, other keys last", () => {
  const keys = ["zeta/a", "plain", KEYS.VAL_LOSS, `${PREFIXES.WD}0`, `${PREFIXES.LR}0`, "alpha/x", KEYS.TRAIN_LOSS,
    `${PREFIXES.PARAM_NORM}a`, `${PREFIXES.GRAD_NORM}a`, KEYS.TIME_WALL];
  const gs = metrics.groups(state(keys), EMPTY());
  assert.deepEqual(gs.map((g) => g.name), ["train", "val", "grad_norm", "param_norm", "lr", "wd", "alpha", "zeta", "other"]);
  assert.ok(!gs.some((g) => g.keys.includes(KEYS.TIME_WALL)), "the clock is an axis, not a metric");
  assert.equal(metrics.groupOf("plain"), "other");
  assert.equal(metrics.groupOf("/odd"), "other");
});

test("a group charts its first few keys not in the overview, totals first", () => {
  const norms = ["a", "b", "c", "d", "e", "total"].map((n) => PREFIXES.PARAM_NORM + n);
  const st = state(norms.concat([KEYS.TRAIN_LOSS, `${PREFIXES.TRAIN}custom`]));
  const gs = metrics.groups(st, EMPTY());
  const pn = gs.find((g) => g.name === "param_norm");
  assert.deepEqual(pn.shown, ["a", "b", "c", "total"].map((n) => PREFIXES.PARAM_NORM + n));
  const train = gs.find((g) => g.name === "train");
  assert.deepEqual(train.shown, [`${PREFIXES.TRAIN}custom`], "the training loss is in the overview already");
});

test("added keys are charted and removed ones are not, whatever the defaults", () => {
  const norms = ["a", "b", "c", "d", "e"].map((n) => PREFIXES.PARAM_NORM + n);
  const layout = EMPTY();
  layout.add.add(norms[4]);
  layout.add.add(KEYS.TRAIN_LOSS);
  layout.hide.add(norms[0]);
  assert.deepEqual(metrics.chosen(norms, layout), norms.slice(1));
  assert.deepEqual(metrics.chosen([KEYS.TRAIN_LOSS], layout), [KEYS.TRAIN_LOSS]);
});

test("constant: a loaded series with one finite value everywhere, buckets included", () => {
  const s = (y, lo = y.map(() => null), hi = lo) => ({ loaded: true, x: y.map((_, i) => i), y, lo, hi });
  assert.equal(metrics.constant(s([0.1, 0.1, 0.1])), true);
  assert.equal(metrics.constant(s([0.1, 0.2])), false);
  assert.equal(metrics.constant(s([0.1])), false, "one point says nothing");
  assert.equal(metrics.constant(s([NaN, NaN])), false);
  assert.equal(metrics.constant(s([1, 1], [1, 0.5], [1, 1])), false, "a bucket that moved inside");
  assert.equal(metrics.constant({ ...s([1, 1]), loaded: false }), false);
  assert.equal(metrics.constant(undefined), false);
});

test("layout sets survive the URL: any characters, empty as no parameter", () => {
  const set = new Set(["a,b", "grad_norm/x y", "ü"]);
  const text = metrics.encodeSet(set);
  assert.equal(text.split(",").length, 3);
  assert.deepEqual(metrics.decodeSet(text), set);
  assert.equal(metrics.encodeSet(new Set()), null);
  assert.deepEqual(metrics.decodeSet(null), new Set());
  assert.deepEqual(metrics.decodeSet("%E0%A4%A,ok"), new Set(["%E0%A4%A", "ok"]), "a broken escape is kept as typed");
});
