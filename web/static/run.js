// A run's page: loads the run, keeps it live (push stream, else polling), and holds the state
// that the charts (run-charts.js), the alerts panel and the header are drawn from. The URL holds
// the view (?chart=loss&x0=..&x1=..&alert=..&smooth=..&log=..), so every view is a link.
import { KEYS } from "./protocol.js";
import { api, runPath, debounce, params, setParams } from "./common.js";
import { Series } from "./series.js";
import * as alerts from "./alerts.js";
import * as config from "./config.js";
import { subscribe } from "./live.js";
import { LINE, isLayerKey } from "./metrics.js";
import * as plots from "./plots.js";
import * as runCharts from "./run-charts.js";
import * as runGroups from "./run-groups.js";
import * as runPanels from "./run-panels.js";
import * as xaxis from "./xaxis.js";

const runId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
const MAX_POINTS = 2000; // per series and view; the server keeps each bucket's min and max
const LAYER_POINTS = 300; // per layer in the heatmap
const CONFIDENCE = KEYS.VAL_CONFIDENCE;
const $ = (id) => document.getElementById(id);

const st = {
  runId, run: null, keys: new Map(), series: new Map(), hists: new Map(), alerts: new Map(),
  alertsVersion: 0, histVersion: 0, themeVersion: 0, range: null, smoothing: 0,
  log: {}, selected: null, // log: chart id -> true/false where the user chose; else automatic
  yr: {}, // chart id -> {range, log}: a y range the user zoomed to
  xmode: "step", smoothSparse: false, axis: xaxis.make("step"), _axisSig: "",
  highlight: new Set(), evalStep: null,
};
let live = null;
let ticks = 0;
let configShown = "";

async function inBatches(items, fn, n = 6) {
  const queue = [...items];
  const worker = async () => { while (queue.length) await fn(queue.shift()).catch((e) => console.warn(e)); };
  await Promise.all(Array.from({ length: Math.min(n, queue.length) }, worker));
}

let groupWant = { sig: "", keys: new Set() };
function wanted(key) {
  const sig = `${st.keys.size}|${JSON.stringify(runGroups.layout, (k, v) => (v instanceof Set ? [...v] : v))}`;
  if (groupWant.sig !== sig) groupWant = { sig, keys: new Set(runGroups.wanted(st)) };
  return Object.values(LINE).some((c) => c.match(key, st)) || isLayerKey(key)
    || key === xaxis.WALL_KEY || xaxis.EPOCH_KEYS.includes(key) || groupWant.keys.has(key);
}

async function ensureSeries(key) {
  if (st.series.has(key)) return;
  const s = new Series(runId, key, isLayerKey(key) ? LAYER_POINTS : key === xaxis.WALL_KEY ? 20 * MAX_POINTS : MAX_POINTS);
  st.series.set(key, s);
  await s.load();
  if (st.range && s.needsDetail(...st.range)) await s.loadDetail(...st.range);
  schedule();
}

function upsertHist(key, h) {
  const list = st.hists.get(key) || [];
  const i = list.findIndex((x) => x.step === h.step);
  if (i >= 0) list[i] = h;
  else {
    list.push(h);
    list.sort((a, b) => a.step - b.step);
  }
  st.hists.set(key, list);
  st.histVersion++;
}

async function loadHists(key) {
  const have = st.hists.get(key) || [];
  const after = have.length ? have[have.length - 1].step : -1;
  const d = await api(runPath(runId, `/histograms?key=${encodeURIComponent(key)}&after=${after}`));
  for (const h of d.histograms) upsertHist(key, h);
}

async function refreshKeys() {
  const keys = await api(runPath(runId, "/keys"));
  for (const k of keys) st.keys.set(k.key, k);
  renderGroups();
  const load = keys.filter((k) => k.kind === "scalar" && wanted(k.key) && !st.series.has(k.key)).map((k) => k.key);
  await Promise.all([inBatches(load, ensureSeries), st.keys.has(CONFIDENCE) ? loadHists(CONFIDENCE) : null]);
}

function setAlerts(list, replace) {
  if (replace) st.alerts = new Map();
  for (const a of list) st.alerts.set(a.id, a);
  st.alertsVersion++;
  renderAlerts();
  renderHealth();
  schedule();
}

async function refreshRun() {
  st.run = await api(runPath(runId));
  renderHeader();
  const cfg = JSON.stringify(st.run.config);
  if (cfg !== configShown) {
    configShown = cfg;
    config.render($("config"), st.run.config, $("config-filter").value);
  }
}

// One round of the polling fallback (and the catch-up after the stream (re)connects).
async function poll() {
  ticks++;
  await refreshRun();
  if (ticks % 3 === 1) await refreshKeys();
  // per-layer series are many and only feed the heatmap: poll them less often
  const tails = [...st.series.values()].filter((s) => !isLayerKey(s.key) || ticks % 5 === 0);
  await inBatches(tails, (s) => s.pollTail());
  if (st.keys.has(CONFIDENCE)) await loadHists(CONFIDENCE);
  setAlerts(await api(runPath(runId, "/alerts")), false); // alerts change, never vanish
  schedule();
  if (st.run.status !== "running") stopLive();
}

const stream = {
  points(d) {
    for (const [key, p] of Object.entries(d.series || {})) {
      const s = st.series.get(key);
      if (s && s.loaded) s.append(p.steps, p.values);
      else if (!st.keys.has(key)) {
        st.keys.set(key, { key, kind: "scalar", count: p.steps.length });
        renderGroups();
        if (wanted(key)) ensureSeries(key).catch((e) => console.warn(e));
      }
    }
    schedule();
  },
  histograms(d) {
    for (const h of Array.isArray(d) ? d : [d]) {
      if (!st.keys.has(h.key)) st.keys.set(h.key, { key: h.key, kind: "histogram", count: 1 });
      upsertHist(h.key, h);
    }
    schedule();
  },
  alerts(list) {
    setAlerts(Array.isArray(list) ? list : [list], false);
  },
  deleted() {
    stopLive();
    $("run-status").textContent = "deleted";
    $("health-line").textContent = "This run was deleted; what is shown is what was loaded before.";
  },
  run(r) {
    st.run = { ...st.run, ...r };
    renderHeader();
    if (r.status !== "running") live && live.pollNow().then(stopLive);
  },
};

function startLive() {
  if (live) return;
  live = subscribe({
    url: runPath(runId, "/events"), handlers: stream, poll, interval: 1000, onMode: renderMode,
    safety: async () => setAlerts(await api(runPath(runId, "/alerts")), false),
  });
}

function stopLive() {
  if (!live) return;
  live.stop();
  live = null;
}

// --- drawing -------------------------------------------------------------------------------
let drawTimer = null;
function schedule() {
  if (drawTimer) return;
  drawTimer = setTimeout(() => {
    drawTimer = null;
    runCharts.drawAll(st, handlers);
    runGroups.notes(st);
    renderXModes();
    renderStats();
  }, 60);
}

const fetchDetails = debounce(async () => {
  if (!st.range) return;
  const need = [...st.series.values()].filter((s) => s.loaded && s.needsDetail(...st.range));
  await inBatches(need, (s) => s.loadDetail(...st.range));
  schedule();
}, 150);

function setRange(r) {
  const next = r ? [Math.floor(r[0]), Math.ceil(r[1])] : null;
  if (String(next) === String(st.range)) return;
  st.range = next;
  if (!next) for (const s of st.series.values()) s.clearDetail();
  setParams({ x0: next ? next[0] : null, x1: next ? next[1] : null });
  $("x0").value = next ? next[0] : "";
  $("x1").value = next ? next[1] : "";
  $("range-note").textContent = next ? `showing steps ${next[0]}–${next[1]}` : "";
  updateLinks();
  schedule();
  fetchDetails();
}

function selectAlert(id) {
  const a = st.alerts.get(Number(id));
  if (!a) return;
  if (st.selected === a.id) {
    st.selected = null;
    st.highlight = new Set();
    setParams({ alert: null });
    setRange(null);
  } else {
    st.selected = a.id;
    st.highlight = new Set((a.evidence && a.evidence.series) || []);
    setParams({ alert: a.id });
    setRange(alerts.zoomRange(a, st.alerts));
  }
  st.alertsVersion++;
  renderAlerts();
  schedule();
}

const handlers = {
  onRange: (r) => setRange(r),
  toStep: (x) => st.axis.toStep(x),
  evalSteps: () => runCharts.calibStats(st).map((c) => c.step),
  onY: (id, y) => {
    if (y) st.yr[id] = { range: y, log: Boolean(document.getElementById(`chart-${id}`)?.layout?.yaxis?.type === "log") };
    else delete st.yr[id];
    schedule();
  },
  onAlert: (id) => selectAlert(id),
  onEval: (step) => { st.evalStep = step; setParams({ eval: step }); schedule(); },
};

// --- page parts (run-panels.js draws them) --------------------------------------------------
const renderMode = (mode) => runPanels.mode(mode);
const renderHeader = () => runPanels.header(st.run, st);
const renderHealth = () => runPanels.health(st, selectAlert);
const renderAlerts = () => runPanels.alerts(st, selectAlert);

const renderStats = () => runPanels.stats(st);

// Metric groups: rebuilt when keys or the layout change; their series load when shown.
function renderGroups() {
  runGroups.render(st);
  const load = [...st.keys.values()].filter((k) => k.kind === "scalar" && wanted(k.key) && !st.series.has(k.key)).map((k) => k.key);
  if (load.length) inBatches(load, ensureSeries).catch((e) => console.warn(e));
  schedule();
}

function renderXModes() {
  const av = st.axis.available || {};
  for (const o of $("xmode").options) o.disabled = !av[o.value] && o.value !== st.xmode;
  $("x-note").textContent = st.axis.mode === st.xmode ? "" : `no ${xaxis.MODES[st.xmode]} recorded: steps shown`;
}

function setXMode(mode) {
  st.xmode = mode;
  setParams({ x: mode === "step" ? null : mode });
  $("xmode").value = mode;
  st.yr = {};
  updateLinks();
  schedule();
}

function chartCsv(id) {
  const div = document.getElementById(`chart-${id}`);
  if (!div || !div.data) return;
  const r = st.range || [-Infinity, Infinity];
  const name = `${st.run ? st.run.name : runId}-${id}`.replace(/[^A-Za-z0-9_.-]+/g, "_");
  plots.download(`${name}.csv`, plots.csv(div, r[0], r[1]));
}

function updateLinks() {
  for (const a of document.querySelectorAll("a.chart-link")) {
    const p = params();
    p.set("chart", a.dataset.link);
    a.href = `${location.pathname}?${p}`;
    a.setAttribute("aria-label", `link to this chart${st.range ? ` at steps ${st.range[0]}–${st.range[1]}` : ""}`);
  }
}

function wireControls() {
  $("smoothing").addEventListener("input", (e) => {
    st.smoothing = Number(e.target.value);
    $("smoothing-out").textContent = st.smoothing.toFixed(2);
    setParams({ smooth: st.smoothing || null });
    updateLinks();
    schedule();
  });
  // per-chart tools (also on the cards the metric groups add): log scale, y reset, CSV
  document.addEventListener("change", (e) => {
    const box = e.target.closest && e.target.closest("input[data-log]");
    if (!box) return;
    st.log[box.dataset.log] = box.checked;
    delete st.yr[box.dataset.log];
    setParams({ log: Object.entries(st.log).map(([k, on]) => (on ? k : `-${k}`)).join(",") });
    updateLinks();
    schedule();
  });
  document.addEventListener("click", (e) => {
    const reset = e.target.closest && e.target.closest("button[data-yreset]");
    if (reset) {
      delete st.yr[reset.dataset.yreset];
      schedule();
    }
    const csv = e.target.closest && e.target.closest("button[data-csv]");
    if (csv) chartCsv(csv.dataset.csv);
  });
  $("xmode").addEventListener("change", (e) => setXMode(e.target.value));
  $("smooth-sparse").addEventListener("change", (e) => {
    st.smoothSparse = e.target.checked;
    setParams({ sparse: st.smoothSparse ? 1 : null });
    schedule();
  });
  runGroups.wire(st, renderGroups);
  $("controls").addEventListener("submit", (e) => {
    e.preventDefault();
    const a = Number($("x0").value), b = Number($("x1").value);
    if ($("x0").value !== "" && $("x1").value !== "" && b > a) setRange([a, b]);
  });
  $("reset-zoom").addEventListener("click", () => {
    st.selected = null;
    st.highlight = new Set();
    setParams({ alert: null });
    renderAlerts();
    setRange(null);
  });
  $("conf-eval").addEventListener("change", (e) => handlers.onEval(Number(e.target.value)));
  $("config-filter").addEventListener("input", (e) => config.render($("config"), st.run ? st.run.config : {}, e.target.value));
  for (const a of document.querySelectorAll("a.chart-link")) {
    a.addEventListener("click", (e) => {
      e.preventDefault();
      setParams({ chart: a.dataset.link });
      if (navigator.clipboard) navigator.clipboard.writeText(location.href).catch(() => {});
      $(`card-${a.dataset.link}`).focus();
    });
  }
  window.addEventListener("fitscope:theme", () => { st.themeVersion++; schedule(); });
}

function readParams() {
  const p = params();
  const x0 = Number(p.get("x0")), x1 = Number(p.get("x1"));
  if (p.get("x0") !== null && p.get("x1") !== null && x1 > x0) {
    st.range = [x0, x1];
    $("x0").value = x0;
    $("x1").value = x1;
    $("range-note").textContent = `showing steps ${x0}–${x1}`;
  }
  const sm = Number(p.get("smooth"));
  if (sm > 0 && sm < 1) {
    st.smoothing = sm;
    $("smoothing").value = sm;
    $("smoothing-out").textContent = sm.toFixed(2);
  }
  for (const item of (p.get("log") || "").split(",").filter(Boolean)) {
    if (item.startsWith("-")) st.log[item.slice(1)] = false;
    else st.log[item] = true;
  }
  if (p.get("x") && xaxis.MODES[p.get("x")]) {
    st.xmode = p.get("x");
    $("xmode").value = st.xmode;
  }
  if (p.get("sparse") === "1") st.smoothSparse = $("smooth-sparse").checked = true;
  if (p.get("eval")) st.evalStep = Number(p.get("eval"));
}

async function start() {
  readParams();
  wireControls();
  updateLinks();
  try {
    await refreshRun();
  } catch (err) {
    $("run-name").textContent = err.status === 404 ? "No such run" : "Could not load this run";
    $("health-line").textContent = String(err.message || err);
    return;
  }
  runGroups.load(st);
  await Promise.all([refreshKeys(), api(runPath(runId, "/alerts")).then((l) => setAlerts(l, true))]);
  const p = params();
  if (p.get("alert") && st.alerts.has(Number(p.get("alert")))) {
    const a = st.alerts.get(Number(p.get("alert")));
    st.selected = a.id;
    st.highlight = new Set((a.evidence && a.evidence.series) || []);
    if (!st.range) setRange(alerts.zoomRange(a, st.alerts));
    renderAlerts();
  }
  if (st.range) fetchDetails();
  schedule();
  const chart = p.get("chart") && $(`card-${p.get("chart")}`);
  if (chart) setTimeout(() => { chart.scrollIntoView({ block: "start" }); chart.focus({ preventScroll: true }); }, 100);
  if (st.run.status !== "finished") startLive();
  // "ran" keeps counting while the run is live
  setInterval(() => { if (st.run && st.run.status === "running") renderHeader(); }, 1000);
}

start();
