// Plotly figure pieces shared by the run and compare pages: themed layouts, a series drawn as a
// line with its min/max band (so no spike hides in a reduction), visible markers for NaN/±Inf,
// alert markers with shaded evidence ranges, and a y range fitted to the visible steps.
import { plotText, severityColor } from "./common.js";
import { ema } from "./series.js";

const CONFIG = {
  responsive: true,
  displaylogo: false,
  modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"],
};
const MARK_Y = { top: 0.95, bottom: 0.05, alert: 0.02 }; // on the hidden 0..1 axis "y2"

function rgba(hex, a) {
  const m = /^#?([0-9a-f]{6})$/i.exec(hex || "");
  if (!m) return hex;
  const n = parseInt(m[1], 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${a})`;
}

function finite(v) {
  return Number.isFinite(v) ? v : null;
}

// Free zoom on both axes: box zoom, and dragging an axis's end or middle. Log axes get
// ticks at whole decades (10⁻³, 10⁻²…) once the data spans one, never stacked minor digits.
function layout(t, { log = false, range = null, yRange = null, xTitle = "step", xType = "linear", height, yTicks = null } = {}) {
  const out = {
    paper_bgcolor: t.paper,
    plot_bgcolor: t.paper,
    font: { color: t.fg, size: 12, family: "system-ui, -apple-system, 'Segoe UI', sans-serif" },
    margin: { l: 62, r: 14, t: 8, b: 38 },
    hovermode: "x unified",
    hoverlabel: { bgcolor: t.paper, bordercolor: t.grid, font: { color: t.fg } },
    xaxis: {
      title: { text: xTitle, standoff: 4, font: { size: 11, color: t.muted } },
      type: xType, gridcolor: t.grid, zerolinecolor: t.grid, linecolor: t.grid,
      autorange: !range, range: range || undefined,
    },
    yaxis: {
      type: log ? "log" : "linear", gridcolor: t.grid, zerolinecolor: t.grid, linecolor: t.grid,
      exponentformat: "power", autorange: !yRange, range: yRange || undefined, ...(yTicks || {}),
    },
    yaxis2: { overlaying: "y", range: [0, 1], visible: false, fixedrange: true, tickmode: "auto" },
    legend: { orientation: "h", x: 0, y: 1.0, yanchor: "bottom", bgcolor: "rgba(0,0,0,0)", font: { size: 11 } },
    shapes: [],
    dragmode: "zoom",
  };
  if (height) out.height = height;
  return out;
}

// The finite y values of the data traces (not bands, markers or the hidden marker axis).
function yExtent(traces, x0 = -Infinity, x1 = Infinity, positive = false) {
  let lo = Infinity, hi = -Infinity;
  for (const tr of traces) {
    if (tr.yaxis === "y2" || !tr.x || !tr.y || tr.type === "heatmap") continue;
    for (let i = 0; i < tr.x.length; i++) {
      const x = tr.x[i];
      const v = tr.y[i];
      if (x < x0 || x > x1 || !Number.isFinite(v) || (positive && v <= 0)) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  return hi >= lo ? [lo, hi] : null;
}

// Tick settings for the y axis: whole decades on a log axis spanning one or more (labels
// 10⁻³, never "4 3 2 1 9 8"), plain short numbers on a linear axis of tiny values.
function yTicks(traces, log, yRange) {
  const ext = yExtent(traces, -Infinity, Infinity, log);
  if (!ext) return null;
  if (log) {
    const [a, b] = yRange || [Math.log10(ext[0]), Math.log10(ext[1])];
    const span = b - a;
    if (span < 0.9) return { tickformat: ".3~g" };
    return { dtick: Math.max(1, Math.ceil(span / 6)), tickformat: null, minor: { showgrid: false } };
  }
  const m = Math.max(Math.abs(ext[0]), Math.abs(ext[1]));
  return m > 0 && m < 1e-2 ? { tickformat: ".3~e" } : null;
}

// A range for a series that does not change (Plotly's own would be a hair's width around
// it, with ticks like ".5×10⁻¹²"): the value in the middle, half its size either side.
function constantRange(traces, log) {
  const ext = yExtent(traces, -Infinity, Infinity, log);
  if (!ext || ext[0] !== ext[1]) return null;
  const v = ext[0];
  if (log) return [Math.log10(v) - 0.5, Math.log10(v) + 0.5];
  return v === 0 ? [-1, 1] : [v - Math.abs(v) * 0.5, v + Math.abs(v) * 0.5];
}

// A series as traces: min/max band (when reduced), the line (raw, faded when smoothed), the
// smoothed line, and NaN/±Inf markers pinned to the top/bottom edge of the plot.
// Sparse series (a few evaluations) are left unsmoothed unless asked: an average over a
// handful of points only lags them.
const SPARSE = 50;

function seriesTraces(t, key, view, { color, name, smoothing = 0, smoothSparse = false, markers = false, width = 1.6, legend = true, dash } = {}) {
  const label = plotText(name || key);
  const steps = view.steps || view.x;
  const out = [];
  if (view.reduced) {
    const hi = view.hi.map((v, i) => finite(v === null ? view.y[i] : v));
    const lo = view.lo.map((v, i) => finite(v === null ? view.y[i] : v));
    out.push({
      x: view.x, y: hi, type: "scatter", mode: "lines", line: { width: 0, color },
      hoverinfo: "skip", showlegend: false, legendgroup: label, meta: { role: "band", key },
    });
    out.push({
      x: view.x, y: lo, type: "scatter", mode: "lines", line: { width: 0, color },
      fill: "tonexty", fillcolor: rgba(color, 0.22), hoverinfo: "skip", showlegend: false,
      legendgroup: label, meta: { role: "band", key },
    });
  }
  const y = view.y.map(finite);
  const smooth = smoothing > 0 && (smoothSparse || view.x.length >= SPARSE);
  const smoothed = smooth ? ema(view.y, smoothing) : null;
  const hover = `${label}: %{y:.5~g} <span style="opacity:.7">(step %{customdata})</span><extra></extra>`;
  out.push({
    x: view.x, y, customdata: steps, type: "scatter", mode: markers ? "lines+markers" : "lines", name: label,
    line: { color, width: smoothed ? 1 : width, dash }, marker: { size: 5, color },
    opacity: smoothed ? 0.35 : 1, showlegend: legend && !smoothed,
    hoverinfo: smoothed ? "skip" : undefined, hovertemplate: smoothed ? undefined : hover, legendgroup: label,
    meta: { role: "line", key },
  });
  if (smoothed) {
    out.push({
      x: view.x, y: smoothed, customdata: steps, type: "scatter", mode: markers ? "lines+markers" : "lines",
      name: label, line: { color, width, dash }, marker: { size: 4, color }, legendgroup: label,
      hovertemplate: `${label} (smoothed): %{y:.5~g} <span style="opacity:.7">(step %{customdata})</span><extra></extra>`,
      showlegend: legend, meta: { role: "smooth", key },
    });
  }
  const nf = nonFiniteTrace(t, key, view, name);
  if (nf) out.push(nf);
  return out;
}

function nonFiniteTrace(t, key, view, name) {
  const xs = [], ys = [], text = [], symbols = [];
  const label = name || key;
  for (let i = 0; i < view.x.length; i++) {
    const v = view.y[i];
    const hi = view.hi[i];
    const lo = view.lo[i];
    let what = null, y = MARK_Y.top, symbol = "x";
    if (Number.isNaN(v)) what = view.lo[i] === null ? "NaN" : "NaN in this range";
    else if (v === Infinity || hi === Infinity) { what = "+Inf"; symbol = "triangle-up"; }
    else if (v === -Infinity || lo === -Infinity) { what = "−Inf"; y = MARK_Y.bottom; symbol = "triangle-down"; }
    if (what === null) continue;
    xs.push(view.x[i]);
    ys.push(y);
    symbols.push(symbol);
    text.push(plotText(`${label} = ${what} at step ${(view.steps || view.x)[i]}`));
  }
  if (!xs.length) return null;
  return {
    x: xs, y: ys, yaxis: "y2", type: "scatter", mode: "markers",
    name: plotText(`${label}: NaN/Inf (${xs.length})`),
    marker: { symbol: symbols, size: 10, color: t.crit, line: { width: 2, color: t.crit } },
    text, hoverinfo: "text", meta: { role: "nonfinite", key },
  };
}

// Alerts as shaded evidence ranges, a dotted line where each was raised, and a clickable marker.
function alertDecor(t, alerts, selectedId, map = (s) => s) {
  const shapes = [];
  const xs = [], ys = [], text = [], colors = [], symbols = [], ids = [];
  for (const a of alerts) {
    const c = severityColor(t, a.severity);
    const ev = a.evidence || {};
    const sel = a.id === selectedId;
    if (Number.isFinite(ev.start_step) && Number.isFinite(ev.end_step)) {
      const s0 = Math.min(ev.start_step, ev.end_step);
      const s1 = Math.max(ev.start_step, ev.end_step);
      const x0 = map(s0 === s1 ? s0 - 0.5 : s0);
      const x1 = map(s0 === s1 ? s1 + 0.5 : s1);
      shapes.push({
        type: "rect", xref: "x", yref: "paper", x0, x1,
        y0: 0, y1: 1, fillcolor: rgba(c, sel ? 0.13 : a.status === "open" ? 0.07 : 0.04),
        line: { width: sel ? 1.5 : 0, color: c }, layer: "below",
      });
    }
    shapes.push({
      type: "line", xref: "x", yref: "paper", x0: map(a.step), x1: map(a.step), y0: 0, y1: 1,
      line: { color: c, width: sel ? 2 : 1, dash: "dot" }, layer: "below",
    });
    xs.push(map(a.step));
    ys.push(MARK_Y.alert);
    colors.push(c);
    symbols.push(a.severity === "critical" ? "diamond" : a.severity === "warning" ? "triangle-up" : "circle");
    ids.push(a.id);
    text.push(plotText(`${a.severity} · ${a.rule} at step ${a.step}: ${a.message}`));
  }
  const trace = xs.length ? {
    x: xs, y: ys, yaxis: "y2", type: "scatter", mode: "markers", name: "alerts",
    marker: { size: 12, color: colors, symbol: symbols, line: { width: 1, color: t.paper } },
    text, hoverinfo: "text", customdata: ids, meta: { role: "alerts" }, showlegend: false,
  } : null;
  return { shapes, trace };
}

// Whether a y axis should be logarithmic when the user has not said: when every finite value
// is positive and they span more than four orders of magnitude (a blow-up next to a healthy
// phase is unreadable on a linear axis).
function autoLog(traces) {
  let lo = Infinity, hi = -Infinity;
  for (const tr of traces) {
    if (tr.yaxis === "y2" || !tr.y || !tr.meta || tr.meta.role !== "line") continue;
    for (const v of tr.y) {
      if (v === null || !Number.isFinite(v)) continue;
      if (v <= 0) return false;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  return hi >= lo && hi / lo > 1e4;
}

// The y range that fits what is visible between x0 and x1 (Plotly's autorange fits all data).
function fitY(traces, x0, x1, log) {
  const ext = yExtent(traces, x0, x1, log);
  if (!ext) return null;
  const [lo, hi] = ext;
  if (log) {
    const a = Math.log10(lo), b = Math.log10(hi);
    const pad = Math.max((b - a) * 0.08, 0.05);
    return [a - pad, b + pad];
  }
  const pad = Math.max((hi - lo) * 0.08, Math.abs(hi) * 0.02, 1e-12);
  return [lo - pad, hi + pad];
}

// Draws into a chart element; the first draw attaches Plotly's events through `init(div)`.
function draw(div, data, lay, init) {
  const first = !div.classList.contains("js-plotly-plot");
  const p = Plotly.react(div, data, lay, CONFIG);
  if (first && init) p.then(() => init(div));
  return p;
}

// The x range from a plotly_relayout event as steps ([s0, s1]), "auto" (reset) or null (no
// change); `toStep` maps the axis's values (times, epochs, dates) back to steps.
function relayoutRange(ev, toStep = Number) {
  if (!ev) return null;
  if (ev["xaxis.autorange"] === true) return "auto";
  const r = ev["xaxis.range"] || (ev["xaxis.range[0]"] !== undefined ? [ev["xaxis.range[0]"], ev["xaxis.range[1]"]] : null);
  if (!r) return null;
  const a = toStep(r[0]), b = toStep(r[1]);
  if (typeof a === "string" || typeof b === "string") return a <= b ? [a, b] : [b, a]; // dates, as given
  return Number.isFinite(a) && Number.isFinite(b) ? [Math.min(a, b), Math.max(a, b)] : null;
}

// The y range the user zoomed to ([lo, hi] in axis units), "auto" or null (no change).
function relayoutY(ev) {
  if (!ev) return null;
  if (ev["yaxis.autorange"] === true) return "auto";
  const r = ev["yaxis.range"] || (ev["yaxis.range[0]"] !== undefined ? [ev["yaxis.range[0]"], ev["yaxis.range[1]"]] : null);
  if (!r) return null;
  const a = Number(r[0]), b = Number(r[1]);
  return Number.isFinite(a) && Number.isFinite(b) ? [Math.min(a, b), Math.max(a, b)] : null;
}

// The data a chart shows, as CSV: one row per point of each series line within the x range.
function csv(div, x0 = -Infinity, x1 = Infinity) {
  const rows = ["key,step,x,value"];
  const q = (v) => (/[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
  for (const tr of div.data || []) {
    if (!tr.meta || !["line", "mean"].includes(tr.meta.role)) continue;
    const name = tr.meta.label || tr.meta.key;
    const steps = tr.customdata || tr.x;
    for (let i = 0; i < tr.x.length; i++) {
      const s = Number(steps[i]);
      if (s < x0 || s > x1) continue;
      const v = tr.meta.raw ? tr.meta.raw[i] : tr.y[i];
      rows.push([q(String(name)), s, q(String(tr.x[i])), v === null ? "" : String(v)].join(","));
    }
  }
  return `${rows.join("\n")}\n`;
}

function download(name, text, type = "text/csv") {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export {
  CONFIG, SPARSE, rgba, layout, yExtent, yTicks, constantRange, seriesTraces, alertDecor, autoLog, fitY, draw,
  relayoutRange, relayoutY, csv, download,
};
