// The run page's text parts: header, health line, alerts panel, latest-value tiles, live state.
import { KEYS, PREFIXES } from "./protocol.js";
import { el, when, duration, num, pct } from "./common.js";
import * as alertView from "./alerts.js";
import * as runCharts from "./run-charts.js";

const $ = (id) => document.getElementById(id);

function mode(m) {
  const text = { live: "live", polling: "live (polling)", connecting: "connecting…", stopped: "" }[m];
  $("live-mode").textContent = text || "";
  $("live-mode").className = `live-mode ${m}`;
}

function header(r) {
  document.title = `fitscope · ${r.name}`;
  $("run-name").textContent = r.name;
  $("run-status").textContent = r.status;
  $("run-status").className = `status ${r.status}`;
  $("crumb-project").textContent = r.project;
  $("crumb-project").href = `/?project=${encodeURIComponent(r.project)}`;
  $("run-id").textContent = `id ${r.id}`;
  // by the training process's clock (a run delivered later by `fitscope sync` keeps its times)
  const start = r.started_at || r.created_at;
  const end = r.status === "running" ? new Date().toISOString() : r.last_time || r.finished_at || r.heartbeat_at;
  $("run-when").textContent = `· started ${when(start)} · ran ${duration(new Date(end) - new Date(start))}`;
}

// The five-second view: the worst open alert's message, and a way to its evidence.
function health(st, selectAlert) {
  const all = [...st.alerts.values()];
  const h = alertView.health(all);
  $("health").replaceWith(Object.assign(alertView.badge(all), { id: "health" }));
  const line = $("health-line");
  line.className = `health-line ${h.level}`;
  if (!h.worst) {
    line.textContent = "No open alerts.";
    return;
  }
  const show = el("button", { type: "button", class: "linklike", id: "show-evidence" }, "show the evidence");
  show.addEventListener("click", () => {
    if (st.selected !== h.worst.id) selectAlert(h.worst.id);
    const item = document.querySelector(`[data-alert-id="${h.worst.id}"]`);
    if (item) item.focus();
  });
  const led = h.effects.length
    ? [" It led to: ", ...h.effects.flatMap((e, i) => {
        const link = el("a", { href: `#alert-${e.id}`, class: "alert-link" }, e.rule);
        link.addEventListener("click", (ev) => {
          ev.preventDefault();
          selectAlert(e.id);
        });
        return i ? [", ", link] : [link];
      }), "."]
    : [];
  line.replaceChildren(h.worst.message, ...led, " ", show);
}

function alerts(st, selectAlert) {
  const all = [...st.alerts.values()];
  const open = all.filter((a) => a.status === "open").length;
  $("alert-count").textContent = all.length ? `(${open} open${all.length > open ? `, ${all.length - open} resolved` : ""})` : "";
  $("alerts-empty").hidden = all.length > 0;
  alertView.render($("alerts"), all, { selectedId: st.selected, onSelect: (a) => selectAlert(a.id) });
}

function stat(label, value, sub, opts = {}) {
  const bad = typeof value === "number" && !Number.isFinite(value);
  return el("div", { class: `stat${bad ? " bad" : ""}`, "data-stat": opts.id },
    el("span", { class: "stat-label" }, label),
    el("span", { class: "stat-value" }, opts.fmt ? opts.fmt(value) : num(value)),
    sub ? el("span", { class: "stat-sub muted" }, sub) : null);
}

// Latest values; a NaN or infinity shows in red rather than as a blank.
function stats(st) {
  const s = (k) => st.series.get(k);
  const parts = [];
  const steps = [...st.series.values()].map((x) => x.lastStep);
  parts.push(stat("step", steps.length ? Math.max(...steps) : undefined, null, { id: "step" }));
  const { TRAIN_LOSS, VAL_LOSS, VAL_ACCURACY, GRAD_NORM_TOTAL } = KEYS;
  if (s(TRAIN_LOSS)) parts.push(stat("train loss", s(TRAIN_LOSS).lastValue(), null, { id: "train-loss" }));
  if (s(VAL_LOSS)) parts.push(stat("val loss", s(VAL_LOSS).lastValue(), `best ${num(s(VAL_LOSS).best("min"))}`, { id: "val-loss" }));
  if (s(VAL_ACCURACY)) parts.push(stat("val accuracy", s(VAL_ACCURACY).lastValue(), `best ${pct(s(VAL_ACCURACY).best("max"))}`, { id: "val-acc", fmt: pct }));
  if (s(GRAD_NORM_TOTAL)) parts.push(stat("grad norm", s(GRAD_NORM_TOTAL).lastValue(), null, { id: "grad" }));
  const lrs = [...st.series.keys()].filter((k) => k.startsWith(PREFIXES.LR)).sort();
  if (lrs.length) parts.push(stat("learning rate", s(lrs[0]).lastValue(), lrs.length > 1 ? `${lrs[0]} of ${lrs.length} groups` : null, { id: "lr" }));
  const cal = runCharts.calibStats(st);
  if (cal.length && cal[cal.length - 1].ece !== null) {
    const c = cal[cal.length - 1];
    parts.push(stat("ECE", c.ece, `confidence ${pct(c.meanConf)} vs accuracy ${pct(c.acc)}`, { id: "ece", fmt: pct }));
  }
  $("stats").replaceChildren(...parts);
}

export { mode, header, health, alerts, stats };
