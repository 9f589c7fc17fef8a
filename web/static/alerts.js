// Alerts: the health verdict of a run (its worst open alert), and the alerts panel where each
// alert shows its message, evidence and remedy and can be clicked (or Enter) to zoom to it.
import { el, num } from "./common.js";

const RANK = { critical: 3, warning: 2, info: 1 };

function byImportance(a, b) {
  const open = (x) => (x.status === "open" ? 1 : 0);
  return open(b) - open(a) || (RANK[b.severity] || 0) - (RANK[a.severity] || 0) || b.step - a.step || b.id - a.id;
}

function sorted(alerts) {
  return [...alerts].sort(byImportance);
}

// {level: "critical"|"warning"|"info"|"ok", label, worst, effects, open}: the level is the
// worst open alert's; `worst` is the root cause that alert leads back to through the open
// alerts' `caused_by` links (a NaN caused by exploding gradients headlines the gradients),
// and `effects` the open alerts it explains.
function health(alerts) {
  const open = sorted(alerts.filter((a) => a.status === "open"));
  if (!open.length) return { level: "ok", label: "healthy", worst: null, effects: [], open };
  const byId = new Map(open.map((a) => [a.id, a]));
  let root = open[0];
  for (let hops = 0; hops < 8; hops++) {
    const c = causeOf(root);
    if (c === null || !byId.has(c)) break;
    root = byId.get(c);
  }
  const effects = open.filter((a) => a !== root && leadsTo(a, root, byId));
  const more = open.length > 1 ? ` +${open.length - 1}` : "";
  return { level: open[0].severity, label: `${open[0].severity}: ${root.rule}${more}`, worst: root, effects, open };
}

function leadsTo(a, root, byId) {
  let x = a;
  for (let hops = 0; hops < 8; hops++) {
    const c = causeOf(x);
    if (c === null || !byId.has(c)) return false;
    if (c === root.id) return true;
    x = byId.get(c);
  }
  return false;
}

function badge(alerts, { long = false } = {}) {
  if (alerts === null) return el("span", { class: "health unknown" }, "…");
  const h = health(alerts);
  const text = long && h.worst ? `${h.worst.severity} · ${h.worst.message}` : h.label;
  const title = h.open.map((a) => `${a.severity} · ${a.rule}: ${a.message}`).join("\n") || "no open alerts";
  return el("span", { class: `health ${h.level}`, title }, text);
}

// Where the alert's condition began: its onset (or evidence start) with a window either side
// (a fifth of the evidence range, at least 20 steps of context), not the whole range.
function zoomRange(a) {
  const ev = a.evidence || {};
  let x0 = Number.isFinite(ev.start_step) ? ev.start_step : (a.onset_step ?? a.step);
  let x1 = Number.isFinite(ev.end_step) ? ev.end_step : a.step;
  if (x0 > x1) [x0, x1] = [x1, x0];
  const start = Number.isFinite(a.onset_step) ? Math.max(x0, Math.min(a.onset_step, x1)) : x0;
  const span = x1 - x0;
  if (span <= 40) {
    const pad = Math.max(2, Math.round(span * 0.15));
    return [Math.max(0, x0 - pad), x1 + pad];
  }
  const half = Math.max(20, Math.round(span * 0.1));
  return [Math.max(0, start - half), start + half];
}

// Human words for the evidence keys the diagnosis writes; an alert's own `evidence_labels`
// (sent by the server) win.
const LABELS = {
  gl: "generalization loss", gl_warn: "generalization loss (warning at)", gl_critical: "generalization loss (critical at)",
  train_drop: "training loss drop", min_train_drop: "least training loss drop", best: "best", best_step: "best at step",
  best_val_loss: "best validation loss", val_loss: "validation loss", train_loss: "training loss",
  evals_since_best: "evaluations since the best", growth: "growth", rising: "rising for", step_change: "step change",
  swing: "swing", noise_ratio: "noise ratio", noise: "noise", amp: "amplitude", baseline: "baseline",
  chance: "chance level", fraction_of_chance: "fraction of chance", improvement: "improvement", loss: "loss",
  nonfinite_gradients: "non-finite gradients", nonfinite_losses: "non-finite losses", now: "now", p_value: "p-value",
  peak: "peak", progress: "progress", ratio: "ratio", rms: "RMS", tv: "total variation", val: "validation",
  train: "training", from: "from", to: "to", kind: "kind", layers: "layers", mean: "mean", accuracy: "accuracy",
  acc_chance: "accuracy at chance", ece: "calibration error (ECE)", confidence: "confidence", blowup_factor: "blow-up factor",
  window: "window", z: "z-score", samples: "samples", settled: "settled", converged: "converged", param: "parameter",
  high: "high", at_chance: "at chance", above_chance: "above chance", trend_rate: "trend rate",
};

function label(a, k) {
  const own = a && a.evidence_labels && a.evidence_labels[k];
  return own || LABELS[k] || k.replace(/_/g, " ");
}

function shownValue(a, v) {
  if (typeof v === "number") return num(v);
  if (typeof v === "string") return v;
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (Array.isArray(v)) return v.map((x) => shownValue(a, x)).join(", ");
  if (v && typeof v === "object") return Object.entries(v).map(([k, x]) => `${label(a, k)} ${shownValue(a, x)}`).join(", ");
  return String(v);
}

function evidenceList(a) {
  const ev = a.evidence || {};
  const items = [];
  if (Array.isArray(ev.series) && ev.series.length) {
    items.push(el("li", {}, "series ", ...ev.series.flatMap((k, i) => [i ? ", " : "", el("code", {}, k)])));
  }
  if (Number.isFinite(ev.start_step) || Number.isFinite(ev.end_step)) {
    items.push(el("li", {}, `steps ${ev.start_step ?? "?"}–${ev.end_step ?? "?"}`));
  }
  for (const [k, v] of Object.entries(ev)) {
    if (k === "series" || k === "start_step" || k === "end_step" || k === "caused_by") continue;
    const shown = shownValue(a, v);
    items.push(el("li", { "data-evidence": k }, el("span", { class: "muted" }, `${label(a, k)} `), shown.length > 120 ? `${shown.slice(0, 117)}…` : shown));
  }
  return items.length ? el("ul", { class: "evidence" }, items) : null;
}

function causeOf(a) {
  const c = a.evidence && a.evidence.caused_by;
  return c && typeof c === "object" && c.alert_id != null ? Number(c.alert_id) : null;
}

// A link that selects another alert (a cause or an effect).
function alertLink(b, onSelect, text) {
  const link = el("a", { href: `#alert-${b.id}`, class: "alert-link", "data-goto": String(b.id) }, text);
  link.addEventListener("click", (e) => {
    e.preventDefault();
    e.stopPropagation();
    onSelect(b);
    const node = document.querySelector(`[data-alert-id="${b.id}"]`);
    if (node) node.focus();
  });
  return link;
}

function item(a, selected, onSelect, byId = new Map(), effects = []) {
  const when = a.onset_step != null && a.onset_step !== a.step ? `steps ${a.onset_step}–${a.step}` : `step ${a.step}`;
  const node = el(
    "li",
    {
      class: `alert ${a.severity} ${a.status}${selected ? " selected" : ""}`,
      tabindex: "0", role: "button", "aria-pressed": selected ? "true" : "false",
      "data-alert-id": String(a.id),
      "aria-label": `${a.severity} ${a.rule} at ${when}: ${a.message}. Press Enter to zoom the charts to its evidence.`,
    },
    el("div", { class: "alert-head" },
      el("span", { class: `sev ${a.severity}` }, a.severity),
      el("code", { class: "rule" }, a.rule),
      el("span", { class: "muted" }, when),
      a.status !== "open" ? el("span", { class: "muted" }, `· ${a.status}`) : null),
    el("p", { class: "alert-msg" }, a.message),
    causeLine(a, byId, onSelect),
    effects.length ? el("p", { class: "effects-head" }, "Root cause of:") : null,
    effects.length ? el("ul", { class: "caused-by" }, effects.map((b) => el("li", {},
      el("span", { class: `sev ${b.severity}` }, b.severity), " ", alertLink(b, onSelect, `${b.message} (step ${b.step})`)))) : null,
    evidenceList(a),
    a.remedy ? el("p", { class: "remedy" }, el("strong", {}, "Try: "), a.remedy) : null,
  );
  node.id = `alert-${a.id}`;
  const pick = () => onSelect(a);
  node.addEventListener("click", pick);
  node.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault();
      pick();
    }
  });
  return node;
}

function causeLine(a, byId, onSelect) {
  const id = causeOf(a);
  if (id === null || !byId.has(id)) return null;
  const c = byId.get(id);
  return el("p", { class: "cause-link" }, "Caused by ", alertLink(c, onSelect, `${c.rule.replace(/_/g, " ")} at step ${c.step}`));
}

// Root causes lead: an alert that caused others comes before them, its effects linked under it.
function causalOrder(list) {
  const byId = new Map(list.map((a) => [a.id, a]));
  const out = [];
  const done = new Set();
  const emit = (a, depth = 0) => {
    if (done.has(a.id) || depth > 8) return;
    const c = causeOf(a);
    if (c !== null && byId.has(c) && !done.has(c)) emit(byId.get(c), depth + 1);
    done.add(a.id);
    out.push(a);
  };
  list.forEach((a) => emit(a));
  return out;
}

// Renders the panel; keeps keyboard focus on the alert that had it.
function render(list, alerts, { selectedId = null, onSelect }) {
  const focusedId = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.alertId : undefined;
  const all = sorted(alerts);
  const byId = new Map(all.map((a) => [a.id, a]));
  const effectsOf = (a) => all.filter((b) => causeOf(b) === a.id);
  const open = causalOrder(all.filter((a) => a.status === "open"));
  const closed = all.filter((a) => a.status !== "open");
  const nodes = open.map((a) => item(a, a.id === selectedId, onSelect, byId, effectsOf(a)));
  if (closed.length) {
    const det = el("details", { class: "resolved" }, el("summary", {}, `Resolved (${closed.length})`),
      el("ul", { class: "alert-list" }, closed.map((a) => item(a, a.id === selectedId, onSelect, byId, effectsOf(a)))));
    if (closed.some((a) => a.id === selectedId)) det.open = true;
    nodes.push(el("li", { class: "resolved-wrap" }, det));
  }
  list.replaceChildren(...nodes);
  if (focusedId !== undefined) {
    const again = list.querySelector(`[data-alert-id="${CSS.escape(focusedId)}"]`);
    if (again) again.focus();
  }
}

export { RANK, LABELS, sorted, health, badge, zoomRange, label, causalOrder, render };
