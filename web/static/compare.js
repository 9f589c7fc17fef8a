"use strict";
// Compare runs (/compare?runs=a,b,...): the chosen metrics of every run overlaid on shared step
// axes, a summary of their outcomes, and their configs side by side with differences marked.
(() => {
  const $ = (id) => document.getElementById(id);
  const MAX_POINTS = 2000;
  const SUMMARY_KEYS = ["train/loss", "val/loss", "val/accuracy"];
  const ids = [...new Set((fs.params().get("runs") || "").split(",").map((s) => s.trim()).filter(Boolean))];
  const runs = []; // {id, run, keys: Map, alerts, color}
  const series = new Map(); // `${id} ${key}` -> Series
  const panes = { a: { key: null, log: null }, b: { key: null, log: null } }; // log null: automatic
  let range = null;
  let smoothing = 0;
  let themeVersion = 0;
  const drawn = {};

  function sid(id, key) {
    return `${id} ${key}`;
  }

  async function ensure(r, key) {
    if (!key || !r.keys.has(key) || series.has(sid(r.id, key))) return;
    const s = new fs.Series(r.id, key, MAX_POINTS);
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

  function drawPane(name, t) {
    const pane = panes[name];
    const list = runs.map((r) => ({ r, s: series.get(sid(r.id, pane.key)) })).filter((x) => x.s);
    const sig = `${themeVersion}|${range}|${smoothing}|${pane.log}|${pane.key}|${list.map((x) => x.s.version)}`;
    if (drawn[name] === sig) return;
    drawn[name] = sig;
    const traces = list.flatMap(({ r, s }) => fs.plots.seriesTraces(t, pane.key, s.view(), {
      color: r.color, name: r.run.name, smoothing, markers: pane.key.startsWith("val/") && s.x.length < 300,
    }));
    const log = pane.log ?? fs.plots.autoLog(traces);
    $(`log-${name}`).checked = log;
    const yRange = range ? fs.plots.fitY(traces, range[0], range[1], log) : null;
    const lay = fs.plots.layout(t, { log, range, yRange });
    fs.plots.draw($(`chart-${name}`), traces, lay, (div) => {
      div.on("plotly_relayout", (ev) => {
        const r = fs.plots.relayoutRange(ev);
        if (r) setRange(r === "auto" ? null : r);
      });
    });
  }

  let timer = null;
  function schedule() {
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      const t = fs.theme();
      drawPane("a", t);
      drawPane("b", t);
      renderSummary();
    }, 60);
  }

  const fetchDetails = fs.debounce(async () => {
    if (!range) return;
    await Promise.all([...series.values()].filter((s) => s.needsDetail(...range)).map((s) => s.loadDetail(...range).catch(console.warn)));
    schedule();
  }, 150);

  function setRange(r) {
    const next = r ? [Math.floor(r[0]), Math.ceil(r[1])] : null;
    if (String(next) === String(range)) return;
    range = next;
    if (!next) for (const s of series.values()) s.clearDetail();
    fs.setParams({ x0: next ? next[0] : null, x1: next ? next[1] : null });
    schedule();
    fetchDetails();
  }

  function swatch(color) {
    const node = fs.el("span", { class: "swatch", "aria-hidden": "true" });
    node.style.background = color; // CSSOM, not a style attribute
    return node;
  }

  function renderLegend() {
    $("legend").replaceChildren(...runs.map((r) => fs.el("li", {},
      swatch(r.color),
      fs.el("a", { href: `/runs/${encodeURIComponent(r.id)}` }, r.run.name),
      fs.el("span", { class: "muted" }, ` ${r.run.project} `),
      fs.el("span", { class: `status ${r.run.status}` }, r.run.status), " ",
      fs.alerts.badge(r.alerts))));
  }

  function renderSummary() {
    const val = (r, k, how) => {
      const s = series.get(sid(r.id, k));
      if (!s) return undefined;
      return how === "last" ? s.lastValue() : s.best(how);
    };
    const rows = [
      ["status", (r) => r.run.status],
      ["health", (r) => fs.alerts.badge(r.alerts)],
      ["last step", (r) => Math.max(-1, ...[...series.values()].filter((s) => s.runId === r.id).map((s) => s.lastStep))],
      ["train loss (last)", (r) => val(r, "train/loss", "last"), "min"],
      ["val loss (best)", (r) => val(r, "val/loss", "min"), "min"],
      ["val accuracy (best)", (r) => val(r, "val/accuracy", "max"), "max", fs.pct],
      ["ran", (r) => fs.duration((r.run.finished_at ? new Date(r.run.finished_at) : r.run.status === "running" ? Date.now() : new Date(r.run.heartbeat_at)) - new Date(r.run.created_at))],
    ];
    const body = rows.map(([label, get, better, fmt]) => {
      const vals = runs.map(get);
      const finite = vals.filter((v) => typeof v === "number" && Number.isFinite(v));
      const best = better && finite.length > 1 ? (better === "min" ? Math.min(...finite) : Math.max(...finite)) : undefined;
      return fs.el("tr", {}, fs.el("th", { scope: "row" }, label), vals.map((v) => fs.el("td",
        { class: best !== undefined && v === best ? "best" : typeof v === "number" && !Number.isFinite(v) ? "bad" : null },
        v instanceof Node ? v : typeof v === "number" ? (fmt || fs.num)(v) : v === undefined ? "–" : v)));
    });
    $("summary").replaceChildren(fs.el("table", { class: "kv compare" },
      fs.el("thead", {}, fs.el("tr", {}, fs.el("th", {}, ""), runs.map((r) => fs.el("th", { scope: "col" }, r.run.name)))),
      fs.el("tbody", {}, body)));
  }

  function renderConfig() {
    $("config").replaceChildren(fs.config.compare(runs.map((r) => r.run), { onlyDiff: $("only-diff").checked }));
  }

  function renderSelects() {
    const keys = allKeys();
    for (const name of ["a", "b"]) {
      $(`key-${name}`).replaceChildren(...keys.map((k) => fs.el("option", { value: k, selected: k === panes[name].key }, k)));
    }
  }

  async function choose(name, key) {
    panes[name].key = key;
    panes[name].log = null; // a new metric gets the automatic scale again
    fs.setParams({ [name]: key });
    await Promise.all(runs.map((r) => ensure(r, key)));
    schedule();
  }

  function watchLive(r) {
    if (r.run.status !== "running") return;
    const mine = () => [...series.values()].filter((s) => s.runId === r.id);
    const sub = fs.live.subscribe({
      url: fs.runPath(r.id, "/events"),
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
        r.run = await fs.api(fs.runPath(r.id));
        await Promise.all(mine().map((s) => s.pollTail()));
        r.alerts = await fs.api(fs.runPath(r.id, "/alerts"));
        renderLegend();
        schedule();
        if (r.run.status !== "running") sub.stop();
      },
    });
  }

  function wire() {
    const p = fs.params();
    for (const name of ["a", "b"]) {
      $(`key-${name}`).addEventListener("change", (e) => choose(name, e.target.value));
    }
    for (const item of (p.get("log") || "").split(",").filter(Boolean)) {
      const name = item.replace(/^-/, "");
      if (panes[name]) panes[name].log = !item.startsWith("-");
    }
    for (const box of document.querySelectorAll("input[data-log]")) {
      box.addEventListener("change", () => {
        panes[box.dataset.log].log = box.checked;
        const explicit = Object.keys(panes).filter((k) => panes[k].log !== null);
        fs.setParams({ log: explicit.map((k) => (panes[k].log ? k : `-${k}`)).join(",") });
        schedule();
      });
    }
    const sm = Number(p.get("smooth"));
    if (sm > 0 && sm < 1) {
      smoothing = sm;
      $("smoothing").value = sm;
      $("smoothing-out").textContent = sm.toFixed(2);
    }
    $("smoothing").addEventListener("input", (e) => {
      smoothing = Number(e.target.value);
      $("smoothing-out").textContent = smoothing.toFixed(2);
      fs.setParams({ smooth: smoothing || null });
      schedule();
    });
    $("reset-zoom").addEventListener("click", () => setRange(null));
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
    const palette = fs.theme().palette;
    const missing = [];
    await Promise.all(ids.map(async (id, i) => {
      try {
        const [run, keys, alerts] = await Promise.all([
          fs.api(fs.runPath(id)), fs.api(fs.runPath(id, "/keys")), fs.api(fs.runPath(id, "/alerts")),
        ]);
        runs[i] = { id, run, keys: new Map(keys.map((k) => [k.key, k])), alerts, color: palette[i % palette.length] };
      } catch (err) {
        missing.push(id);
      }
    }));
    for (let i = runs.length - 1; i >= 0; i--) if (!runs[i]) runs.splice(i, 1);
    if (missing.length) {
      $("problem").hidden = false;
      $("problem").textContent = `Not found: ${missing.join(", ")}`;
    }
    document.title = `fitscope · compare ${runs.map((r) => r.run.name).join(" vs ")}`;
    const p = fs.params();
    panes.a.key = p.get("a") || pickDefault(["train/loss", "val/loss"]);
    panes.b.key = p.get("b") || pickDefault(["val/accuracy", "val/loss", "grad_norm/total"]);
    renderSelects();
    renderLegend();
    renderConfig();
    const keys = new Set([panes.a.key, panes.b.key, ...SUMMARY_KEYS]);
    await Promise.all(runs.flatMap((r) => [...keys].map((k) => ensure(r, k).catch(console.warn))));
    schedule();
    if (range) fetchDetails();
    runs.forEach(watchLive);
  }

  start();
})();
