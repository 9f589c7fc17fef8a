// Compare runs (/compare?runs=a,b,...): any number of charts (?a=key&b=key&c=key...), each
// overlaying the chosen metric of every shown run on a shared step axis; runs can be hidden
// (?off=), told apart by a short id when their names repeat, and grouped by a config key
// (?group=lr) into a mean line with a min/max band. Below: a summary and the configs side by side.
import { KEYS, PREFIXES } from "./protocol.js";
import { api, runPath, el, plotText, duration, num, pct, theme, debounce, params, setParams } from "./common.js";
import { Series } from "./series.js";
import * as alerts from "./alerts.js";
import * as config from "./config.js";
import { subscribe } from "./live.js";
import * as plots from "./plots.js";
import * as xaxis from "./xaxis.js";

const $ = (id) => document.getElementById(id);
const MAX_POINTS = 2000;
const SUMMARY_KEYS = [KEYS.TRAIN_LOSS, KEYS.VAL_LOSS, KEYS.VAL_ACCURACY];
const ids = [...new Set((params().get("runs") || "").split(",").map((s) => s.trim()).filter(Boolean))];
const runs = []; // {id, run, keys: Map, alerts, color}
const series = new Map(); // `${id} ${key}` -> Series
const LETTERS = "abcdefghijklmnopqrstuvwxyz";
const panes = {}; // letter -> {key, log, yr}; log null: automatic
let off = new Set(); // run ids hidden from the charts
let groupKey = null; // a config key: runs grouped by its value
let range = null; // in steps
let xmode = "step"; // or "relative" | "wall" | "epoch": each run mapped by its own clock
let xr = null; // a zoom in a time or epoch mode, in that axis's units
let smoothing = 0;
let themeVersion = 0;
const drawn = {};

function sid(id, key) {
  return `${id} ${key}`;
}

async function ensure(r, key) {
  if (!key || !r.keys.has(key) || series.has(sid(r.id, key))) return;
  const s = new Series(r.id, key, MAX_POINTS);
  series.set(sid(r.id, key), s);
  await s.load();
  if (range && s.needsDetail(...range)) await s.loadDetail(...range);
}

function allKeys() {
  const keys = new Set();
  for (const r of runs) for (const [k, v] of r.keys) if (v.kind === "scalar") keys.add(k);
  return [...keys].sort();
}

function pickDefault(prefer) {
  const keys = allKeys();
  return prefer.find((k) => keys.includes(k)) || keys[0] || null;
}

// A run's label: its name, with a short id when another compared run has the same name.
function label(r) {
  const same = runs.filter((x) => x.run.name === r.run.name).length > 1;
  return same ? `${r.run.name} · ${r.id.slice(0, 6)}` : r.run.name;
}

function configValue(r, key) {
  const hit = config.flatten(r.run.config || {}).find(([k]) => k === key);
  return hit ? config.show(hit[1]) : "(unset)";
}

// Mean, min and max over runs at the union of their steps (each run interpolated inside its
// own range; a run does not count where it has no data).
function aggregate(views) {
  let xs = [...new Set(views.flatMap((v) => v.x))].sort((a, b) => a - b);
  if (xs.length > MAX_POINTS) xs = Array.from({ length: MAX_POINTS }, (_, i) => xs[Math.round((i * (xs.length - 1)) / (MAX_POINTS - 1))]);
  const mean = [], lo = [], hi = [], n = [];
  for (const x of xs) {
    let sum = 0, k = 0, a = Infinity, b = -Infinity;
    for (const v of views) {
      if (!v.x.length || x < v.x[0] || x > v.x[v.x.length - 1]) continue;
      const y = xaxis.interp(v.x, v.y, x);
      if (!Number.isFinite(y)) continue;
      sum += y; k++; a = Math.min(a, y); b = Math.max(b, y);
    }
    mean.push(k ? sum / k : null); lo.push(k ? a : null); hi.push(k ? b : null); n.push(k);
  }
  return { x: xs, mean, lo, hi, n };
}

function groupTraces(t, key, shown) {
  const groups = new Map();
  for (const { r, s } of shown) {
    const v = configValue(r, groupKey);
    if (!groups.has(v)) groups.set(v, []);
    groups.get(v).push(xaxis.mapView(axisOf(r), s.view()));
  }
  const out = [];
  [...groups.entries()].sort(([a], [b]) => a.localeCompare(b, undefined, { numeric: true })).forEach(([v, views], i) => {
    const color = t.palette[i % t.palette.length];
    const g = aggregate(views);
    const name = plotText(`${groupKey}=${v} (${views.length} run${views.length === 1 ? "" : "s"})`);
    out.push({ x: g.x, y: g.hi, type: "scatter", mode: "lines", line: { width: 0, color }, hoverinfo: "skip", showlegend: false, legendgroup: name, meta: { role: "band", key } });
    out.push({
      x: g.x, y: g.lo, type: "scatter", mode: "lines", line: { width: 0, color }, fill: "tonexty",
      fillcolor: plots.rgba(color, 0.2), hoverinfo: "skip", showlegend: false, legendgroup: name, meta: { role: "band", key },
    });
    out.push({
      x: g.x, y: g.mean, customdata: g.x, type: "scatter", mode: "lines", name, line: { color, width: 2 }, legendgroup: name,
      hovertemplate: `${name}: mean %{y:.5~g} <span style="opacity:.7">(step %{x})</span><extra></extra>`,
      meta: { role: "mean", key, label: `${groupKey}=${v}` },
    });
  });
  return out;
}

// Each run's own x axis (its clock, its epochs); runs that lack the mode's data are left out.
function axisOf(r) {
  const wall = series.get(sid(r.id, xaxis.WALL_KEY)) || null;
  const ek = xaxis.epochKey(r.keys);
  const epoch = ek ? series.get(sid(r.id, ek)) || null : null;
  const startSec = r.run.started_at ? Date.parse(r.run.started_at) / 1000 : null;
  return xaxis.make(xmode, { wall, epoch, startSec });
}

async function loadClocks() {
  await Promise.all(runs.flatMap((r) => [xaxis.WALL_KEY, xaxis.epochKey(r.keys)].filter(Boolean).map((k) => ensure(r, k).catch(console.warn))));
}

function xNumber(v) {
  return xmode === "wall" ? xaxis.parseLocal(v) : Number(v);
}

function drawPane(name, t) {
  const pane = panes[name];
  if (!pane || !pane.key) return;
  const all = runs.filter((r) => !off.has(r.id)).map((r) => ({ r, s: series.get(sid(r.id, pane.key)), ax: axisOf(r) })).filter((x) => x.s);
  const list = all.filter((x) => x.ax.mode === xmode);
  const left = all.filter((x) => x.ax.mode !== xmode).map((x) => label(x.r));
  const clocks = runs.map((r) => { const w = series.get(sid(r.id, xaxis.WALL_KEY)); return w ? w.version : -1; });
  const sig = `${themeVersion}|${range}|${xmode}|${xr}|${clocks}|${smoothing}|${pane.log}|${pane.yr}|${pane.key}|${groupKey}|${[...off]}|${list.map((x) => `${x.r.id}:${x.s.version}`)}`;
  if (drawn[name] === sig) return;
  drawn[name] = sig;
  const note = document.querySelector(`#card-${name} .pane-note`);
  if (note) note.textContent = left.length ? `no ${xaxis.MODES[xmode]} recorded for ${left.join(", ")}: not shown` : "";
  const traces = groupKey ? groupTraces(t, pane.key, list) : list.flatMap(({ r, s, ax }) => plots.seriesTraces(t, pane.key, xaxis.mapView(ax, s.view()), {
    color: r.color, name: label(r), smoothing, markers: s.x.length < 300 && (pane.key.startsWith(PREFIXES.VAL) || s.x.length < plots.SPARSE),
  }).map((tr) => ({ ...tr, meta: { ...tr.meta, label: label(r), run: r.id } })));
  const log = pane.log ?? plots.autoLog(traces);
  $(`log-${name}`).checked = log;
  const user = pane.yr && pane.yr.log === log ? pane.yr.range : null;
  const shownRange = xmode === "step" ? range : xr;
  const fitRange = shownRange && xmode === "wall" ? shownRange.map(xNumber) : shownRange;
  const yRange = user || (fitRange ? plots.fitY(traces, fitRange[0], fitRange[1], log) : null) || plots.constantRange(traces, log);
  const ax0 = list.length ? list[0].ax : xaxis.make("step");
  const lay = plots.layout(t, {
    log, range: shownRange, yRange, yTicks: plots.yTicks(traces, log, yRange), xTitle: ax0.title, xType: ax0.type,
  });
  plots.draw($(`chart-${name}`), traces, lay, (div) => {
    div.on("plotly_relayout", (ev) => {
      const y = plots.relayoutY(ev);
      if (y) {
        panes[name].yr = y === "auto" ? null : { range: y, log: div.layout.yaxis.type === "log" };
        drawn[name] = null;
        schedule();
      }
      if (xmode === "step") {
        const r = plots.relayoutRange(ev);
        if (r) setRange(r === "auto" ? null : r);
        return;
      }
      const r = plots.relayoutRange(ev, (v) => v);
      if (r) {
        xr = r === "auto" ? null : r;
        schedule();
      }
    });
  });
}

let timer = null;
function schedule() {
  if (timer) return;
  timer = setTimeout(() => {
    timer = null;
    const t = theme();
    for (const name of Object.keys(panes)) drawPane(name, t);
    renderSummary();
  }, 60);
}

const fetchDetails = debounce(async () => {
  if (!range) return;
  await Promise.all([...series.values()].filter((s) => s.needsDetail(...range)).map((s) => s.loadDetail(...range).catch(console.warn)));
  schedule();
}, 150);

function setRange(r) {
  const next = r ? [Math.floor(r[0]), Math.ceil(r[1])] : null;
  if (String(next) === String(range)) return;
  range = next;
  if (!next) for (const s of series.values()) s.clearDetail();
  setParams({ x0: next ? next[0] : null, x1: next ? next[1] : null });
  schedule();
  fetchDetails();
}

function swatch(color) {
  const node = el("span", { class: "swatch", "aria-hidden": "true" });
  node.style.background = color; // CSSOM, not a style attribute
  return node;
}

// One entry per run: its colour, a toggle to show or hide it, its link, status and health.
function renderLegend() {
  $("legend").replaceChildren(...runs.map((r) => {
    const box = el("input", { type: "checkbox", "data-run-toggle": r.id, checked: !off.has(r.id), "aria-label": `show ${label(r)}` });
    box.addEventListener("change", () => {
      if (box.checked) off.delete(r.id); else off.add(r.id);
      setParams({ off: [...off].join(",") || null });
      schedule();
    });
    return el("li", { "data-run": r.id },
      box, swatch(r.color),
      el("a", { href: `/runs/${encodeURIComponent(r.id)}`, title: `run ${r.id}` }, label(r)),
      el("span", { class: "muted" }, ` ${r.run.project} `),
      el("span", { class: `status ${r.run.status}` }, r.run.status), " ",
      alerts.badge(r.alerts));
  }));
}

function renderSummary() {
  const val = (r, k, how) => {
    const s = series.get(sid(r.id, k));
    if (!s) return undefined;
    return how === "last" ? s.lastValue() : s.best(how);
  };
  const rows = [
    ["status", (r) => r.run.status],
    ["health", (r) => alerts.badge(r.alerts)],
    ["last step", (r) => Math.max(-1, ...[...series.values()].filter((s) => s.runId === r.id).map((s) => s.lastStep))],
    ["train loss (last)", (r) => val(r, KEYS.TRAIN_LOSS, "last"), "min"],
    ["val loss (best)", (r) => val(r, KEYS.VAL_LOSS, "min"), "min"],
    ["val accuracy (best)", (r) => val(r, KEYS.VAL_ACCURACY, "max"), "max", pct],
    ["ran", (r) => duration((r.run.status === "running" ? Date.now() : new Date(r.run.last_time || r.run.finished_at || r.run.heartbeat_at)) - new Date(r.run.started_at || r.run.created_at))],
  ];
  const body = rows.map(([label, get, better, fmt]) => {
    const vals = runs.map(get);
    const finite = vals.filter((v) => typeof v === "number" && Number.isFinite(v));
    const best = better && finite.length > 1 ? (better === "min" ? Math.min(...finite) : Math.max(...finite)) : undefined;
    return el("tr", {}, el("th", { scope: "row" }, label), vals.map((v) => el("td",
      { class: best !== undefined && v === best ? "best" : typeof v === "number" && !Number.isFinite(v) ? "bad" : null },
      v instanceof Node ? v : typeof v === "number" ? (fmt || num)(v) : v === undefined ? "–" : v)));
  });
  $("summary").replaceChildren(el("table", { class: "kv compare" },
    el("thead", {}, el("tr", {}, el("th", {}, ""), runs.map((r) => el("th", { scope: "col" }, label(r))))),
    el("tbody", {}, body)));
}

function renderConfig() {
  $("config").replaceChildren(config.compare(runs.map((r) => ({ ...r.run, name: label(r) })), { onlyDiff: $("only-diff").checked }));
}

function paneCard(name) {
  const only = Object.keys(panes).length <= 1;
  return el("section", { class: "card", id: `card-${name}`, "data-chart": name, "aria-labelledby": `h-${name}` },
    el("header", {},
      el("h2", { id: `h-${name}` }, el("label", { for: `key-${name}` }, "Metric")),
      el("span", { class: "tools" },
        el("select", { id: `key-${name}`, "data-pane": name }),
        el("label", {}, el("input", { type: "checkbox", id: `log-${name}`, "data-log": name }), " log scale"),
        el("button", { type: "button", class: "mini", "data-yreset": name, title: "reset the y range" }, "reset y"),
        el("span", { class: "pane-note muted" }),
        el("button", { type: "button", class: "mini", "data-csv": name, title: "download the shown data as CSV" }, "CSV"),
        only ? null : el("button", { type: "button", class: "mini", "data-remove-pane": name, "aria-label": "remove this chart" }, "×"))),
    el("div", { class: "chart", id: `chart-${name}`, role: "img", "aria-label": "the chosen metric of every compared run" }));
}

function renderPanes() {
  const keys = allKeys();
  $("panes").replaceChildren(...Object.keys(panes).map((name) => {
    const card = paneCard(name);
    const sel = card.querySelector("select");
    sel.replaceChildren(...keys.map((k) => el("option", { value: k, selected: k === panes[name].key }, k)));
    sel.addEventListener("change", (e) => choose(name, e.target.value));
    drawn[name] = null;
    return card;
  }));
}

function renderSelects() {
  renderPanes();
  const opts = [...new Set(runs.flatMap((r) => config.flatten(r.run.config || {}).map(([k]) => k)))]
    .filter((k) => !/^fitscope\.(layers|parameters)\./.test(k)).sort();
  $("group-by").replaceChildren(el("option", { value: "" }, "(no grouping)"),
    ...opts.map((k) => el("option", { value: k, selected: k === groupKey }, k)));
}

function nextKey() {
  const used = new Set(Object.values(panes).map((p) => p.key));
  return allKeys().find((k) => !used.has(k) && k !== KEYS.TIME_WALL) || allKeys()[0] || null;
}

async function addPane(key) {
  const name = [...LETTERS].find((l) => !panes[l]);
  if (!name) return;
  panes[name] = { key: null, log: null, yr: null };
  renderPanes();
  await choose(name, key || nextKey());
}

function removePane(name) {
  delete panes[name];
  setParams({ [name]: null });
  renderPanes();
  schedule();
}

async function choose(name, key) {
  panes[name].key = key;
  panes[name].log = null; // a new metric gets the automatic scale again
  panes[name].yr = null;
  setParams({ [name]: key });
  await Promise.all(runs.map((r) => ensure(r, key)));
  schedule();
}

function watchLive(r) {
  if (r.run.status !== "running") return;
  const mine = () => [...series.values()].filter((s) => s.runId === r.id);
  const sub = subscribe({
    url: runPath(r.id, "/events"),
    handlers: {
      points(d) {
        for (const [key, p] of Object.entries(d.series || {})) {
          const s = series.get(sid(r.id, key));
          if (s && s.loaded) s.append(p.steps, p.values);
        }
        schedule();
      },
      run(run) { Object.assign(r.run, run); if (run.status !== "running") sub.stop(); },
      alerts(list) { r.alerts = [...(r.alerts || []).filter((a) => !list.some((b) => b.id === a.id)), ...list]; renderLegend(); },
    },
    poll: async () => {
      r.run = await api(runPath(r.id));
      await Promise.all(mine().map((s) => s.pollTail()));
      r.alerts = await api(runPath(r.id, "/alerts"));
      renderLegend();
      schedule();
      if (r.run.status !== "running") sub.stop();
    },
  });
}

function wire() {
  const p = params();
  for (const l of LETTERS) if (p.get(l)) panes[l] = { key: p.get(l), log: null, yr: null };
  off = new Set((p.get("off") || "").split(",").filter(Boolean));
  groupKey = p.get("group") || null;
  for (const item of (p.get("log") || "").split(",").filter(Boolean)) {
    const name = item.replace(/^-/, "");
    if (!panes[name]) panes[name] = { key: null, log: null, yr: null };
    panes[name].log = !item.startsWith("-");
  }
  $("panes").addEventListener("change", (e) => {
    const box = e.target.closest("input[data-log]");
    if (!box) return;
    panes[box.dataset.log].log = box.checked;
    panes[box.dataset.log].yr = null;
    const explicit = Object.keys(panes).filter((k) => panes[k].log !== null);
    setParams({ log: explicit.map((k) => (panes[k].log ? k : `-${k}`)).join(",") });
    schedule();
  });
  $("panes").addEventListener("click", (e) => {
    const b = e.target.closest("button");
    if (!b) return;
    if (b.dataset.yreset) { panes[b.dataset.yreset].yr = null; drawn[b.dataset.yreset] = null; schedule(); }
    if (b.dataset.removePane) removePane(b.dataset.removePane);
    if (b.dataset.csv) {
      const r = range || [-Infinity, Infinity];
      plots.download(`compare-${(panes[b.dataset.csv].key || "chart").replace(/[^A-Za-z0-9_.-]+/g, "_")}.csv`, plots.csv($(`chart-${b.dataset.csv}`), r[0], r[1]));
    }
  });
  $("add-pane").addEventListener("click", () => addPane());
  if (p.get("x") && xaxis.MODES[p.get("x")]) xmode = $("xmode").value = p.get("x");
  $("xmode").addEventListener("change", async (e) => {
    xmode = e.target.value;
    xr = null;
    for (const pane of Object.values(panes)) pane.yr = null;
    setParams({ x: xmode === "step" ? null : xmode });
    schedule();
  });
  $("group-by").addEventListener("change", (e) => {
    groupKey = e.target.value || null;
    setParams({ group: groupKey });
    schedule();
  });
  const sm = Number(p.get("smooth"));
  if (sm > 0 && sm < 1) {
    smoothing = sm;
    $("smoothing").value = sm;
    $("smoothing-out").textContent = sm.toFixed(2);
  }
  $("smoothing").addEventListener("input", (e) => {
    smoothing = Number(e.target.value);
    $("smoothing-out").textContent = smoothing.toFixed(2);
    setParams({ smooth: smoothing || null });
    schedule();
  });
  $("reset-zoom").addEventListener("click", () => { xr = null; setRange(null); schedule(); });
  $("controls").addEventListener("submit", (e) => e.preventDefault());
  $("only-diff").addEventListener("change", renderConfig);
  window.addEventListener("fitscope:theme", () => { themeVersion++; schedule(); });
  const x0 = Number(p.get("x0")), x1 = Number(p.get("x1"));
  if (p.get("x0") !== null && p.get("x1") !== null && x1 > x0) range = [x0, x1];
}

async function start() {
  wire();
  if (ids.length === 0) {
    $("problem").hidden = false;
    $("problem").textContent = "No runs chosen: tick two or more runs in the runs list and press Compare.";
    return;
  }
  const palette = theme().palette;
  const missing = [];
  await Promise.all(ids.map(async (id, i) => {
    try {
      const [run, keys, alertList] = await Promise.all([
        api(runPath(id)), api(runPath(id, "/keys")), api(runPath(id, "/alerts")),
      ]);
      runs[i] = { id, run, keys: new Map(keys.map((k) => [k.key, k])), alerts: alertList, color: palette[i % palette.length] };
    } catch (err) {
      missing.push(id);
    }
  }));
  for (let i = runs.length - 1; i >= 0; i--) if (!runs[i]) runs.splice(i, 1);
  if (missing.length) {
    $("problem").hidden = false;
    $("problem").textContent = `Not found: ${missing.join(", ")}`;
  }
  document.title = `fitscope · compare ${runs.map(label).join(" vs ")}`;
  if (!Object.keys(panes).length) {
    panes.a = { key: null, log: null, yr: null };
    panes.b = { key: null, log: null, yr: null };
  }
  for (const [name, pane] of Object.entries(panes)) {
    if (!pane.key) pane.key = name === "a" ? pickDefault([KEYS.TRAIN_LOSS, KEYS.VAL_LOSS]) : pickDefault([KEYS.VAL_ACCURACY, KEYS.VAL_LOSS, KEYS.GRAD_NORM_TOTAL]);
  }
  renderSelects();
  renderLegend();
  renderConfig();
  const keys = new Set([...Object.values(panes).map((x) => x.key), ...SUMMARY_KEYS]);
  await Promise.all([...runs.flatMap((r) => [...keys].map((k) => ensure(r, k).catch(console.warn))), loadClocks()]);
  schedule();
  if (range) fetchDetails();
  runs.forEach(watchLive);
}

start();
