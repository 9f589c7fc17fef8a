import assert from "node:assert/strict";
import { test } from "node:test";

import { load } from "./static.mjs";

const heatmap = await load("heatmap.js");

const THEME = { paper: "#fff", fg: "#000", muted: "#666", grid: "#ddd", crit: "#c00" };
// One heatmap row: a layer with its raw points (hi: null where a point is not a bucket).
const layer = (name, x, y, hi = x.map(() => null)) => ({ name, key: `grad_norm/${name}`, view: { x, y, hi } });
const steps = (n) => Array.from({ length: n }, (_, i) => i);

test("no layers or no points: no figure", () => {
  assert.equal(heatmap.figure(THEME, []), null);
  assert.equal(heatmap.figure(THEME, [layer("a", [], [])]), null);
});

test("one column per step while they fit; cells are log10 of the geometric mean", () => {
  const f = heatmap.figure(THEME, [layer("a", steps(4), [1, 10, 100, 1000]), layer("b", steps(4), [0.1, 0.1, 0.1, 0.1])]);
  const [h] = f.data;
  assert.equal(h.type, "heatmap");
  assert.deepEqual(h.y, ["a", "b"]);
  assert.deepEqual(h.x, [0, 1, 2, 3]);
  assert.deepEqual(h.z[0], [0, 1, 2, 3]);
  assert.deepEqual(h.z[1].map((v) => Math.round(v * 1e9) / 1e9), [-1, -1, -1, -1]);
  assert.equal(h.zmin, -1);
  assert.equal(h.zmax, 3);
  assert.deepEqual(f.layout.xaxis.range, [-0.5, 3.5]);
});

test("columns are never more than the sparsest row's points, nor more than 240", () => {
  const dense = layer("dense", steps(1000), steps(1000).map(() => 1));
  const sparse = layer("sparse", [0, 500, 999], [1, 1, 1]);
  assert.equal(heatmap.figure(THEME, [dense, sparse]).data[0].x.length, 3);
  assert.equal(heatmap.figure(THEME, [dense]).data[0].x.length, 240);
  const mean = heatmap.figure(THEME, [layer("a", [0, 1, 2, 3], [1, 100, 1, 100])], { range: [0, 3] });
  assert.equal(mean.data[0].x.length, 4);
});

test("a column's value is the mean of the logs of its points", () => {
  const f = heatmap.figure(THEME, [layer("a", [0, 1], [1, 100]), layer("b", [0, 1], [1, 1])], { range: [0, 1] });
  // two steps, two points per row: one column each
  assert.deepEqual(f.data[0].z[0], [0, 2]);
  const one = heatmap.figure(THEME, [layer("a", [0, 1, 2, 3], [1, 100, 10, 1000]), layer("b", [0, 3], [1, 1])]);
  assert.equal(one.data[0].x.length, 2);
  assert.deepEqual(one.data[0].z[0], [1, 2]);
});

test("NaN/Inf cells get a cross, exact zeros an open circle, with their own hover text", () => {
  const f = heatmap.figure(THEME, [layer("a", steps(4), [1, NaN, 0, 5], [null, null, null, Infinity])]);
  const [h, marks] = f.data;
  assert.equal(h.z[0][1], null);
  assert.equal(h.z[0][2], null);
  assert.match(h.text[0][1], /NaN\/Inf/);
  assert.match(h.text[0][2], /zero/);
  assert.deepEqual(marks.x, [1, 2, 3]);
  assert.deepEqual(marks.marker.symbol, ["x", "circle-open", "x"]);
  assert.equal(marks.marker.color, THEME.crit);
});

test("an empty column in a row whose points are merely uneven is filled; a real gap is not", () => {
  // four columns of 1.25 steps (row a has four points), and none of them in its second
  const uneven = heatmap.figure(THEME, [layer("a", [0, 1, 3, 4], [10, 10, 10, 10]), layer("b", steps(5), steps(5).map(() => 10))]);
  assert.equal(uneven.data[0].x.length, 4);
  assert.deepEqual(uneven.data[0].z[0], [1, 1, 1, 1]);
  // ten columns of two steps: nothing in steps 6..15 is a gap of five columns
  const gap = heatmap.figure(THEME, [
    layer("a", [0, 1, 2, 3, 4, 5, 16, 17, 18, 19], Array(10).fill(10)),
    layer("b", steps(20), steps(20).map(() => 10)),
  ]);
  assert.deepEqual(gap.data[0].z[0], [1, 1, 1, null, null, null, null, null, 1, 1]);
  assert.match(gap.data[0].text[0][4], /no data/);
});

test("layer names are escaped for Plotly and highlighted layers framed", () => {
  const f = heatmap.figure(THEME, [layer("<a>", [0, 1], [1, 1]), layer("b", [0, 1], [1, 1])], { highlight: new Set(["grad_norm/b"]) });
  assert.deepEqual(f.data[0].y, ["&lt;a&gt;", "b"]);
  assert.equal(f.layout.shapes.length, 1);
  assert.equal(f.layout.shapes[0].y0, 0.5);
});

test("an x axis maps the columns", () => {
  const axis = { map: (s) => s * 10, type: "linear", title: "epoch" };
  const f = heatmap.figure(THEME, [layer("a", [0, 1], [1, 1])], { axis });
  assert.deepEqual(f.data[0].x, [0, 10]);
  assert.equal(f.layout.xaxis.title.text, "epoch");
  assert.deepEqual(f.layout.xaxis.range, [-5, 15]);
});
