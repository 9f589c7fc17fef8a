// A run's config as tables: the user's hyperparameters, then what fitscope captured (optimizer,
// parameter counts, ...), and, on the compare page, several runs side by side with differences marked.
import { el, when, num } from "./common.js";

const CAPTURED = "fitscope";
// one row per layer is noise when comparing; every run starts at its own time
const SKIP_IN_COMPARE = /^fitscope\.(layers\.|started_at$)/;

// [[path, value]] with nested objects and arrays of objects spread into dotted paths.
function flatten(obj, prefix = "", out = []) {
  for (const [k, v] of Object.entries(obj || {})) {
    const path = prefix ? `${prefix}.${k}` : k;
    const spread = v && typeof v === "object" && (!Array.isArray(v) || v.some((x) => x && typeof x === "object"));
    if (spread && Object.keys(v).length) flatten(v, path, out);
    else out.push([path, v]);
  }
  return out;
}

function show(v) {
  if (v === undefined) return "";
  if (typeof v === "string") return v;
  if (typeof v === "number") return num(v, 6);
  return JSON.stringify(v);
}

// A dotted key that may wrap after its dots (text nodes and <wbr>, never parsed markup).
function keyText(k) {
  return k.split(".").flatMap((part, i) => (i ? [el("wbr"), `.${part}`] : [part]));
}

function table(rows, caption) {
  return el("table", { class: "kv" },
    caption ? el("caption", {}, caption) : null,
    el("tbody", {}, rows.map(([k, v]) => el("tr", { "data-key": k }, el("th", { scope: "row" }, keyText(k)), el("td", {}, show(v))))));
}

// The run page's config panel; `filter` keeps rows whose key or value contains it.
function render(box, config, filter = "") {
  const f = filter.trim().toLowerCase();
  const keep = ([k, v]) => !f || k.toLowerCase().includes(f) || show(v).toLowerCase().includes(f);
  const user = Object.fromEntries(Object.entries(config || {}).filter(([k]) => k !== CAPTURED));
  const captured = (config || {})[CAPTURED] || {};
  const { layers, ...rest } = captured;
  const parts = [];
  const u = flatten(user).filter(keep);
  parts.push(u.length ? table(u, "Hyperparameters") : el("p", { class: "muted" }, f ? "No hyperparameter matches." : "No hyperparameters were passed (config=)."));
  // the training process's start (Unix seconds) as a date
  const dated = Number.isFinite(rest.started_at) ? { ...rest, started_at: when(new Date(rest.started_at * 1000).toISOString()) } : rest;
  const c = flatten(dated).filter(keep); // under its own caption: no "fitscope." prefix
  if (c.length) parts.push(table(c, "Captured by fitscope"));
  if (layers && typeof layers === "object") {
    const l = Object.entries(layers).map(([k, v]) => [k, v]).filter(keep);
    if (l.length) {
      parts.push(el("details", { class: "layers" },
        el("summary", {}, `Layers (${Object.keys(layers).length}) and parameter counts`), table(l)));
    }
  }
  box.replaceChildren(...parts);
}

// Runs side by side: one row per config key, rows whose values differ marked `.diff`.
function compare(runs, { onlyDiff = false } = {}) {
  const flat = runs.map((r) => new Map(flatten(r.config || {}).filter(([k]) => !SKIP_IN_COMPARE.test(k))));
  const keys = [];
  const seen = new Set();
  for (const m of flat) for (const k of m.keys()) if (!seen.has(k)) { seen.add(k); keys.push(k); }
  keys.sort((a, b) => (a.startsWith(`${CAPTURED}.`) - b.startsWith(`${CAPTURED}.`)) || a.localeCompare(b));
  const rows = [];
  for (const k of keys) {
    const vals = flat.map((m) => (m.has(k) ? show(m.get(k)) : undefined));
    const differs = vals.some((v) => v !== vals[0]);
    if (onlyDiff && !differs) continue;
    rows.push(el("tr", { class: differs ? "diff" : null, "data-key": k },
      el("th", { scope: "row" }, keyText(k)),
      vals.map((v) => el("td", { class: v === undefined ? "missing" : null }, v === undefined ? "—" : v))));
  }
  return el("table", { class: "kv compare" },
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "key"), runs.map((r) => el("th", { scope: "col" }, r.name)))),
    el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: String(runs.length + 1), class: "muted" }, "The configs are identical."))));
}

export { flatten, show, render, compare };
