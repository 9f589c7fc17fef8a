// What the run page makes of metric keys, without touching the page: the overview chart a key
// is drawn in, its colour, the group (key prefix) it is listed under, and which keys of a group
// get a chart. The keys themselves come from protocol.js (generated from fitscope.protocol).
import { KEYS, PREFIXES } from "./protocol.js";

// evaluation splits: val/, test/, train_eval/ (run.split("train")), eval2/... (a second
// unnamed pass at one step) and any split named with run.split(name)
const EVAL_LOSS = /^(val|test|train_eval|eval\d+|[a-z][a-z0-9_]*\d*)\/loss$/;
function isEvalKey(k) {
  return k !== KEYS.TRAIN_LOSS && EVAL_LOSS.test(k.replace(/\/accuracy$/, "/loss"));
}

// The overview's line charts and the keys each draws.
const LINE = {
  loss: { match: (k) => k === KEYS.TRAIN_LOSS || isEvalKey(k), allAlerts: true },
  acc: { match: (k) => k.endsWith("/accuracy") },
  grad: { match: (k) => k === KEYS.GRAD_NORM_TOTAL },
  lr: { match: (k) => k.startsWith(PREFIXES.LR) },
};
const LAYER_PREFIX = PREFIXES.GRAD_NORM; // the per-layer heatmap's rows

function colorFor(t, key) {
  const p = t.palette;
  const fixed = {
    [KEYS.TRAIN_LOSS]: 0, [KEYS.VAL_LOSS]: 1, [KEYS.VAL_ACCURACY]: 2, [KEYS.TRAIN_ACCURACY]: 0, [KEYS.GRAD_NORM_TOTAL]: 4,
    [`${PREFIXES.TEST}loss`]: 6, [`${PREFIXES.TEST}accuracy`]: 6, [`${PREFIXES.TRAIN_EVAL}loss`]: 7, [`${PREFIXES.TRAIN_EVAL}accuracy`]: 7,
  };
  if (key in fixed) return p[fixed[key] % p.length];
  const group = key.startsWith(PREFIXES.LR) ? key.slice(PREFIXES.LR.length) : "";
  if (/^\d+$/.test(group)) return p[(Number(group) + 3) % p.length];
  return p[5 % p.length];
}

function isLayerKey(k) {
  return k.startsWith(LAYER_PREFIX) && k !== KEYS.GRAD_NORM_TOTAL;
}

// The per-layer keys in model order (the hook's `fitscope.layers` config), others after by name.
function layerKeys(st) {
  const keys = [...st.keys.keys()].filter(isLayerKey);
  const order = Object.keys(((st.run || {}).config || {}).fitscope?.layers || {});
  const rank = new Map(order.map((name, i) => [LAYER_PREFIX + name, i]));
  return keys.sort((a, b) => (rank.get(a) ?? 1e9) - (rank.get(b) ?? 1e9) || a.localeCompare(b));
}

function inOverview(key) {
  return Object.values(LINE).some((c) => c.match(key)) || isLayerKey(key);
}

// groups are named by their prefix without the slash
const ORDER = [PREFIXES.TRAIN, PREFIXES.VAL, PREFIXES.GRAD_NORM, PREFIXES.PARAM_NORM, PREFIXES.LR, PREFIXES.WD].map((p) => p.slice(0, -1));
const PER_GROUP = 4; // charts a group shows by default; the rest are one click away
const HIDDEN_KEYS = new Set([KEYS.TIME_WALL]); // the clock: an x axis, not a metric

function groupOf(key) {
  const i = key.indexOf("/");
  return i > 0 ? key.slice(0, i) : "other";
}

function groupOrder(a, b) {
  const ia = ORDER.indexOf(a), ib = ORDER.indexOf(b);
  if (a === "other" || b === "other") return a === "other" ? 1 : -1;
  return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
}

function scalarKeys(st) {
  return [...st.keys.values()].filter((k) => k.kind === "scalar" && !HIDDEN_KEYS.has(k.key)).map((k) => k.key).sort();
}

// A series whose every value is the same (e.g. a constant weight decay): not worth a chart.
function constant(s) {
  if (!s || !s.loaded || s.x.length < 2) return false;
  const v = s.y[0];
  if (!Number.isFinite(v)) return false;
  for (let i = 0; i < s.y.length; i++) {
    if (s.y[i] !== v || (s.lo[i] !== null && s.lo[i] !== v) || (s.hi[i] !== null && s.hi[i] !== v)) return false;
  }
  return true;
}

// The keys of a group with a chart: added ones, else the first few not in the overview
// (totals first), minus removed ones. layout: {closed, add, hide}, sets of group names / keys.
function chosen(keys, layout) {
  const fresh = keys.filter((k) => !inOverview(k) && !layout.hide.has(k));
  const byTotal = [...fresh].sort((a, b) => Number(b.endsWith("/total")) - Number(a.endsWith("/total")));
  const auto = byTotal.slice(0, PER_GROUP);
  return keys.filter((k) => layout.add.has(k) || (auto.includes(k) && !layout.hide.has(k)));
}

// [{name, keys, shown}] in display order: the page's scalar keys by group, `shown` those charted.
function groups(st, layout) {
  const by = new Map();
  for (const k of scalarKeys(st)) {
    const g = groupOf(k);
    if (!by.has(g)) by.set(g, []);
    by.get(g).push(k);
  }
  return [...by.keys()].sort(groupOrder).map((g) => ({ name: g, keys: by.get(g), shown: chosen(by.get(g), layout) }));
}

// A set of names as a URL parameter value (null when empty), and back.
function encodeSet(set) {
  return [...set].map(encodeURIComponent).join(",") || null;
}

function decodeSet(text) {
  return new Set((text || "").split(",").filter(Boolean).map((x) => { try { return decodeURIComponent(x); } catch { return x; } }));
}

export {
  LINE, LAYER_PREFIX, isEvalKey, colorFor, isLayerKey, layerKeys, inOverview, groupOf, groupOrder, constant, chosen,
  groups, encodeSet, decodeSet,
};
