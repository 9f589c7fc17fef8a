// The run page's charts, drawn from the page state (see run.js). A chart is redrawn only when
// something it shows changed. All step charts share one zoom range.
import { KEYS } from "./protocol.js";
import { el, pct, theme } from "./common.js";
import * as calibration from "./calibration.js";
import * as heatmap from "./heatmap.js";
import { LINE, LAYER_PREFIX, isEvalKey, colorFor, layerKeys } from "./metrics.js";
import * as plots from "./plots.js";
import * as runGroups from "./run-groups.js";
import * as xaxis from "./xaxis.js";

const STEP_CHARTS = ["loss", "acc", "grad", "layers", "lr", "evo"];
const LOG_DEFAULT = { grad: true, acc: false, lr: false }; // others: automatic (plots.autoLog)
const drawn = {}; // chart id -> signature of what it shows

function relevantAlerts(st, keys, all) {
  const out = [];
  for (const a of st.alerts.values()) {
    const series = (a.evidence && a.evidence.series) || [];
    if (all || series.some((k) => keys.includes(k))) out.push(a);
  }
  return out;
}

// Hides a chart with nothing to show (its note says why). Returns whether it stays hidden;
// a chart shown again is resized, since Plotly cannot measure a hidden element.
function showEmpty(id, empty) {
  const card = document.getElementById(`card-${id}`);
  const was = card.classList.contains("empty");
  card.classList.toggle("empty", empty);
  card.querySelector(".empty-note").hidden = !empty;
  const div = document.getElementById(`chart-${id}`);
  if (was && !empty && div.classList.contains("js-plotly-plot")) setTimeout(() => Plotly.Plots.resize(div), 0);
  return empty;
}

function changed(id, sig) {
  if (drawn[id] === sig) return false;
  drawn[id] = sig;
  return true;
}

function common(st) {
  return `${st.themeVersion}|${st.range}|${st.alertsVersion}|${st.selected}|${[...st.highlight]}|${st.axis.sig}`;
}

// The page's x axis (step, time or epoch), rebuilt when its mode or its clock changed.
function axisOf(st) {
  const wall = st.series.get(xaxis.WALL_KEY) || null;
  const ek = xaxis.epochKey(st.keys);
  const epoch = ek ? st.series.get(ek) || null : null;
  const startSec = st.run && st.run.started_at ? Date.parse(st.run.started_at) / 1000 : null;
  const sig = `${st.xmode}|${wall ? wall.version : -1}|${epoch ? epoch.version : -1}|${startSec}`;
  if (!st.axis || st._axisSig !== sig) {
    st.axis = xaxis.make(st.xmode, { wall, epoch, startSec });
    st._axisSig = sig;
  }
  return st.axis;
}

function init(handlers, id) {
  return (div) => {
    div.on("plotly_relayout", (ev) => {
      const y = plots.relayoutY(ev);
      if (y) handlers.onY(id, y === "auto" ? null : y);
      const r = plots.relayoutRange(ev, (x) => handlers.toStep(x));
      if (r) handlers.onRange(r === "auto" ? null : r);
    });
    div.on("plotly_click", (ev) => {
      const p = ev && ev.points && ev.points[0];
      if (!p) return;
      if (p.data && p.data.meta && p.data.meta.role === "alerts") handlers.onAlert(p.customdata);
      else if (div.id === "chart-evo") {
        // the nearest evaluation to the clicked x (a step, time or epoch)
        const step = handlers.toStep(p.x);
        const evals = handlers.evalSteps();
        if (Number.isFinite(step) && evals.length) handlers.onEval(evals.reduce((a, b) => (Math.abs(b - step) < Math.abs(a - step) ? b : a)));
      }
    });
  };
}

function drawLine(id, st, t, handlers) {
  const spec = LINE[id];
  const keys = [...st.series.keys()].filter((k) => spec.match(k, st)).sort();
  drawKeys(id, keys, st, t, handlers, { allAlerts: spec.allAlerts, logDefault: LOG_DEFAULT[id] });
}

// One line chart of some series, with the alerts that concern them, on the page's x axis.
function drawKeys(id, keys, st, t, handlers, { allAlerts = false, logDefault, forceEmpty = false } = {}) {
  const withData = keys.filter((k) => st.series.has(k) && st.series.get(k).x.length);
  const sig = `${common(st)}|${st.smoothing}|${st.smoothSparse}|${st.log[id]}|${st.yr[id]}|${withData.map((k) => `${k}:${st.series.get(k).version}`)}`;
  if (!changed(id, sig)) return;
  const alerts = relevantAlerts(st, keys, allAlerts);
  if (showEmpty(id, forceEmpty || (withData.length === 0 && alerts.length === 0))) return;
  const ax = st.axis;
  const traces = [];
  for (const k of withData) {
    const s = st.series.get(k);
    traces.push(...plots.seriesTraces(t, k, xaxis.mapView(ax, s.view()), {
      color: colorFor(t, k), smoothing: st.smoothing, smoothSparse: st.smoothSparse,
      markers: s.x.length < 300 && (isEvalKey(k) || s.x.length < plots.SPARSE),
      width: st.highlight.has(k) ? 3 : 1.6,
    }));
  }
  const log = st.log[id] ?? logDefault ?? plots.autoLog(traces);
  const box = document.querySelector(`input[data-log="${CSS.escape(id)}"]`);
  if (box) box.checked = log;
  const decor = plots.alertDecor(t, alerts, st.selected, ax.map);
  if (decor.trace) traces.push(decor.trace);
  const xr = xaxis.mapRange(ax, st.range);
  const user = st.yr[id] && st.yr[id].log === log ? st.yr[id].range : null;
  const yRange = user || (xr ? plots.fitY(traces, xr[0], xr[1], log) : null) || plots.constantRange(traces, log);
  const lay = plots.layout(t, {
    log, range: xr, yRange, xTitle: ax.title, xType: ax.type, yTicks: plots.yTicks(traces, log, yRange),
  });
  lay.shapes = decor.shapes;
  const card = document.getElementById(`card-${id}`);
  card.classList.toggle("evidence", keys.some((k) => st.highlight.has(k)));
  card.classList.toggle("y-zoomed", Boolean(user));
  plots.draw(document.getElementById(`chart-${id}`), traces, lay, init(handlers, id));
}

function drawLayers(st, t, handlers) {
  const keys = layerKeys(st).filter((k) => st.series.has(k));
  const sig = `${common(st)}|${keys.map((k) => `${k}:${st.series.get(k).version}`)}`;
  if (!changed("layers", sig)) return;
  const layers = keys.map((k) => ({ key: k, name: k.slice(LAYER_PREFIX.length), view: st.series.get(k).view() }));
  const fig = heatmap.figure(t, layers, { range: st.range, highlight: st.highlight, axis: st.axis });
  showEmpty("layers", !fig);
  document.getElementById("card-layers").classList.toggle("evidence", keys.some((k) => st.highlight.has(k)));
  if (!fig) return;
  const div = document.getElementById("chart-layers");
  div.style.height = `${fig.layout.height}px`;
  plots.draw(div, fig.data, fig.layout, init(handlers, "layers"));
}

function calibStats(st) {
  const hs = st.hists.get(KEYS.VAL_CONFIDENCE) || [];
  if (!st._calib || st._calib.n !== hs.length || st._calib.v !== st.histVersion) {
    st._calib = { n: hs.length, v: st.histVersion, stats: hs.map(calibration.stats) };
  }
  return st._calib.stats;
}

function drawCalibration(st, t, handlers) {
  const all = calibStats(st);
  const sig = `${st.themeVersion}|${st.histVersion}|${st.evalStep}|${st.range}|${st.axis.sig}`;
  if (!changed("calib-group", sig)) return;
  const empty = all.length === 0;
  for (const id of ["conf", "calib", "evo"]) showEmpty(id, empty);
  const select = document.getElementById("conf-eval");
  if (empty) {
    select.replaceChildren();
    return;
  }
  const chosen = all.find((s) => s.step === st.evalStep) || all[all.length - 1];
  select.replaceChildren(...all.map((s, i) => el("option", { value: String(s.step), selected: s === chosen },
    `step ${s.step}${i === all.length - 1 ? " (latest)" : ""}`)));
  document.getElementById("conf-step").textContent = `at step ${chosen.step}${chosen === all[all.length - 1] ? " (latest evaluation)" : ""}`;
  document.getElementById("calib-ece").textContent = chosen.ece === null ? "" : `ECE ${pct(chosen.ece)}`;
  const h = calibration.histogramFigure(t, chosen);
  plots.draw(document.getElementById("chart-conf"), h.data, h.layout);
  const r = calibration.reliabilityFigure(t, chosen);
  plots.draw(document.getElementById("chart-calib"), r.data, r.layout);
  const e = calibration.evolutionFigure(t, all, st.range, st.axis);
  const at = st.axis.map(chosen.step);
  e.layout.shapes = [{
    type: "line", xref: "x", yref: "paper", x0: at, x1: at, y0: 0, y1: 1,
    line: { color: t.fg, width: 1, dash: "dot" },
  }];
  plots.draw(document.getElementById("chart-evo"), e.data, e.layout, init(handlers, "evo"));
}

function drawAll(st, handlers) {
  const t = theme();
  axisOf(st);
  for (const id of Object.keys(LINE)) drawLine(id, st, t, handlers);
  for (const c of runGroups.charts(st)) drawKeys(c.id, [c.key], st, t, handlers, { forceEmpty: c.hidden });
  drawLayers(st, t, handlers);
  drawCalibration(st, t, handlers);
}

function forget() {
  for (const k of Object.keys(drawn)) delete drawn[k];
}

function forgetChart(id) {
  delete drawn[id];
}

export { STEP_CHARTS, calibStats, axisOf, drawAll, forget, forgetChart };
