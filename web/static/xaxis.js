// The x axis of step charts: step, time since the run started, wall-clock time, or epoch.
// Time comes from the hook's `time/wall` series (Unix seconds at the last step of each flush),
// epoch from an `epoch` series; any step maps to them by linear interpolation (extrapolated at
// the ends with the nearest segment's rate), and a zoom drawn in time maps back to steps.
import { KEYS, PREFIXES } from "./protocol.js";

const WALL_KEY = KEYS.TIME_WALL;
const EPOCH_KEYS = [KEYS.EPOCH, `${PREFIXES.TRAIN}${KEYS.EPOCH}`];
const MODES = { step: "step", relative: "time since start", wall: "wall time", epoch: "epoch" };

// Linear interpolation of ys over increasing xs, extrapolated at both ends.
function interp(xs, ys, x) {
  const n = xs.length;
  if (n === 0) return NaN;
  if (n === 1) return ys[0];
  let i;
  if (x <= xs[0]) i = 0;
  else if (x >= xs[n - 1]) i = n - 2;
  else {
    let lo = 0, hi = n - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (xs[mid] <= x) lo = mid; else hi = mid;
    }
    i = lo;
  }
  const dx = xs[i + 1] - xs[i];
  return dx === 0 ? ys[i] : ys[i] + ((x - xs[i]) * (ys[i + 1] - ys[i])) / dx;
}

// A monotone (step, value) table from a loaded series: a reduction's bucket starts pair with
// the bucket's minimum (time and epoch grow with the step, so the minimum is at the start).
function table(series) {
  if (!series || !series.x.length) return null;
  const xs = [], ys = [];
  let last = -Infinity;
  for (let i = 0; i < series.x.length; i++) {
    const v = series.lo[i] !== null && series.lo[i] !== undefined ? series.lo[i] : series.y[i];
    if (!Number.isFinite(v) || v < last || (xs.length && series.x[i] <= xs[xs.length - 1])) continue;
    xs.push(series.x[i]);
    ys.push(v);
    last = v;
  }
  return xs.length ? { xs, ys } : null;
}

function epochKey(keys) {
  return EPOCH_KEYS.find((k) => keys.has(k)) || null;
}

function timeUnit(span) {
  if (span >= 2 * 3600) return { div: 3600, name: "h" };
  if (span >= 120) return { div: 60, name: "min" };
  return { div: 1, name: "s" };
}

// A local wall time as Plotly's date axis shows it (it has no time zones: shift to local).
function localMs(sec) {
  const ms = sec * 1000;
  return ms - new Date(ms).getTimezoneOffset() * 60000;
}

function parseLocal(v) {
  if (typeof v === "number") return v;
  const s = String(v).replace(" ", "T");
  return Date.parse(/Z|[+-]\d\d:?\d\d$/.test(s) ? s : `${s}Z`);
}

// mode: "step" | "relative" | "wall" | "epoch"; wall, epoch: series (or null); startSec: the
// run's start by the training clock. Falls back to steps when the mode's data is missing.
function make(mode, { wall = null, epoch = null, startSec = null } = {}) {
  const ident = { mode: "step", title: "step", type: "linear", sig: "step", map: (s) => s, toStep: (x) => Number(x), available: {} };
  const wt = table(wall);
  const et = table(epoch);
  ident.available = { step: true, relative: Boolean(wt), wall: Boolean(wt), epoch: Boolean(et) };
  if (mode === "epoch" && et) {
    return {
      ...ident, mode, title: "epoch", sig: `epoch|${et.xs.length}|${et.xs[et.xs.length - 1]}`,
      map: (s) => interp(et.xs, et.ys, s), toStep: (x) => interp(et.ys, et.xs, Number(x)),
    };
  }
  if ((mode === "relative" || mode === "wall") && wt) {
    const sig = `${mode}|${wt.xs.length}|${wt.xs[wt.xs.length - 1]}`;
    const t = (s) => interp(wt.xs, wt.ys, s);
    const fromT = (sec) => interp(wt.ys, wt.xs, sec);
    if (mode === "wall") {
      return {
        ...ident, mode, type: "date", title: "wall time (local)", sig,
        map: (s) => localMs(t(s)),
        toStep: (x) => {
          const ms = parseLocal(x);
          return fromT((ms + new Date(ms).getTimezoneOffset() * 60000) / 1000);
        },
      };
    }
    const t0 = Number.isFinite(startSec) && startSec <= wt.ys[0] ? startSec : wt.ys[0];
    const unit = timeUnit(wt.ys[wt.ys.length - 1] - t0);
    return {
      ...ident, mode, title: `time since start (${unit.name})`, sig: `${sig}|${t0}|${unit.name}`,
      map: (s) => (t(s) - t0) / unit.div, toStep: (x) => fromT(Number(x) * unit.div + t0),
    };
  }
  return ident;
}

// A view ({x, y, lo, hi}) with its x mapped; the steps are kept for hover text and downloads.
function mapView(ax, view) {
  if (ax.mode === "step") return { ...view, steps: view.x };
  return { ...view, steps: view.x, x: view.x.map(ax.map) };
}

function mapRange(ax, r) {
  return r ? [ax.map(r[0]), ax.map(r[1])] : null;
}

export { WALL_KEY, EPOCH_KEYS, MODES, interp, table, epochKey, make, mapView, mapRange, parseLocal };
