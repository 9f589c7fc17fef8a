// Per-layer gradient norms as a heatmap: one row per layer, one column per range of steps, the
// colour the log10 of the norm (geometric mean over the column). A vanishing layer is a dark row,
// an exploding one a bright streak; NaN/Inf cells carry a red cross, exact zeros an open circle.
import { plotText, num } from "./common.js";

const MAX_COLS = 240;
const MAX_MARKS = 3000;

function extent(layers, range) {
  if (range) return range;
  let a = Infinity, b = -Infinity;
  for (const l of layers) {
    if (!l.view.x.length) continue;
    a = Math.min(a, l.view.x[0]);
    b = Math.max(b, l.view.x[l.view.x.length - 1]);
  }
  return a <= b ? [a, b] : null;
}

// layers: [{name, key, view}] in model order. Returns {data, layout} or null without data.
// Columns no narrower than the points are apart: with more columns than points, some
// columns of a complete row would hold no point and show as white "no data" stripes.
function columns(layers, x0, x1) {
  let fewest = Infinity;
  for (const l of layers) {
    let n = 0;
    for (const x of l.view.x) if (x >= x0 && x <= x1) n++;
    if (n) fewest = Math.min(fewest, n);
  }
  return Math.max(1, Math.min(MAX_COLS, Math.ceil(x1 - x0 + 1), Number.isFinite(fewest) ? fewest : 1));
}

function figure(t, layers, { range = null, highlight = new Set(), axis = null } = {}) {
  const ext = extent(layers, range);
  if (!ext || !layers.length) return null;
  const [x0, x1] = ext;
  const cols = columns(layers, x0, x1);
  const w = (x1 - x0 + 1) / cols;
  const xs = Array.from({ length: cols }, (_, c) => x0 + (c + 0.5) * w - 0.5);
  const names = layers.map((l) => plotText(l.name));
  const z = [], text = [];
  const marks = { x: [], y: [], symbol: [], text: [] };
  let zmin = Infinity, zmax = -Infinity;
  layers.forEach((l, row) => {
    const sum = new Float64Array(cols), n = new Int32Array(cols);
    const zeros = new Int32Array(cols), bad = new Int32Array(cols);
    const { x, y, hi } = l.view;
    for (let i = 0; i < x.length; i++) {
      if (x[i] < x0 || x[i] > x1) continue;
      const c = Math.min(cols - 1, Math.floor((x[i] - x0) / w));
      const v = y[i];
      if (!Number.isFinite(v) || hi[i] === Infinity) bad[c]++;
      if (Number.isFinite(v) && v > 0) { sum[c] += Math.log10(v); n[c]++; }
      else if (v === 0) zeros[c]++;
    }
    // a column between two with data, in a row whose points are merely uneven, is not a gap
    for (let c = 1; c < cols - 1; c++) {
      if (n[c] || bad[c] || zeros[c] || !n[c - 1]) continue;
      if (n[c + 1] || (c + 2 < cols && n[c + 2])) { sum[c] = sum[c - 1] / n[c - 1]; n[c] = 1; }
    }
    const zr = new Array(cols), tr = new Array(cols);
    for (let c = 0; c < cols; c++) {
      if (n[c]) {
        zr[c] = sum[c] / n[c];
        zmin = Math.min(zmin, zr[c]);
        zmax = Math.max(zmax, zr[c]);
        tr[c] = `${names[row]}<br>step ≈ ${Math.round(xs[c])}<br>grad norm ${num(Math.pow(10, zr[c]), 3)}`;
      } else {
        zr[c] = null;
        tr[c] = `${names[row]}<br>step ≈ ${Math.round(xs[c])}<br>${bad[c] ? "NaN/Inf" : zeros[c] ? "zero" : "no data"}`;
      }
      if ((bad[c] || (zeros[c] && !n[c])) && marks.x.length < MAX_MARKS) {
        marks.x.push(xs[c]);
        marks.y.push(names[row]);
        marks.symbol.push(bad[c] ? "x" : "circle-open");
        marks.text.push(bad[c] ? `${names[row]}: NaN/Inf near step ${Math.round(xs[c])}` : `${names[row]}: zero gradient near step ${Math.round(xs[c])}`);
      }
    }
    z.push(zr);
    text.push(tr);
  });
  if (!(zmax >= zmin)) { zmin = -1; zmax = 0; }
  if (zmax - zmin < 1) { zmin -= 0.5; zmax += 0.5; }
  const ticks = [];
  const every = Math.max(1, Math.ceil((zmax - zmin) / 6)); // at most ~6 labels on the colour bar
  for (let e = Math.ceil(zmin); e <= Math.floor(zmax); e += every) ticks.push(e);
  const ax = axis || { map: (v) => v, type: "linear", title: "step" };
  const mx = xs.map(ax.map);
  const data = [{
    type: "heatmap", x: mx, y: names, z, zmin, zmax, text, hoverinfo: "text",
    colorscale: "Viridis", xgap: 0, ygap: 1,
    colorbar: {
      thickness: 10, len: 0.95, outlinewidth: 0, tickfont: { size: 10 },
      tickvals: ticks, ticktext: ticks.map((e) => `1e${e}`),
    },
  }];
  if (marks.x.length) {
    data.push({
      type: "scatter", mode: "markers", x: marks.x.map(ax.map), y: marks.y, name: "NaN/Inf or zero",
      marker: { symbol: marks.symbol, size: 8, color: t.crit, line: { width: 2, color: t.crit } },
      text: marks.text.map(plotText), hoverinfo: "text", showlegend: false,
    });
  }
  const longest = Math.max(...layers.map((l) => l.name.length));
  const height = Math.max(240, Math.min(640, 60 + 18 * layers.length));
  const shapes = [];
  layers.forEach((l, row) => {
    if (!highlight.has(l.key)) return;
    shapes.push({
      type: "rect", xref: "paper", yref: "y", x0: 0, x1: 1, y0: row - 0.5, y1: row + 0.5,
      line: { color: t.crit, width: 2 }, fillcolor: "rgba(0,0,0,0)",
    });
  });
  const layout = {
    paper_bgcolor: t.paper, plot_bgcolor: t.paper, height,
    font: { color: t.fg, size: 11, family: "system-ui, -apple-system, 'Segoe UI', sans-serif" },
    margin: { l: Math.min(220, 14 + 6.5 * longest), r: 10, t: 8, b: 38 },
    hovermode: "closest",
    hoverlabel: { bgcolor: t.paper, bordercolor: t.grid, font: { color: t.fg } },
    xaxis: {
      title: { text: ax.title, standoff: 4, font: { size: 11, color: t.muted } }, gridcolor: t.grid,
      type: ax.type, range: (range || [x0 - 0.5, x1 + 0.5]).map(ax.map), autorange: false,
    },
    yaxis: { type: "category", autorange: "reversed", fixedrange: true, automargin: false, tickfont: { size: 10 } },
    shapes,
  };
  return { data, layout };
}

export { figure };
