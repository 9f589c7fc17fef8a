"use strict";
// Alerts: the health verdict of a run (its worst open alert), and the alerts panel where each
// alert shows its message, evidence and remedy and can be clicked (or Enter) to zoom to it.
fs.alerts = (() => {
  const RANK = { critical: 3, warning: 2, info: 1 };

  function byImportance(a, b) {
    const open = (x) => (x.status === "open" ? 1 : 0);
    return open(b) - open(a) || (RANK[b.severity] || 0) - (RANK[a.severity] || 0) || b.step - a.step || b.id - a.id;
  }

  function sorted(alerts) {
    return [...alerts].sort(byImportance);
  }

  // {level: "critical"|"warning"|"info"|"ok", label, worst, open}
  function health(alerts) {
    const open = sorted(alerts.filter((a) => a.status === "open"));
    if (!open.length) return { level: "ok", label: "healthy", worst: null, open };
    const worst = open[0];
    const more = open.length > 1 ? ` +${open.length - 1}` : "";
    return { level: worst.severity, label: `${worst.severity}: ${worst.rule}${more}`, worst, open };
  }

  function badge(alerts, { long = false } = {}) {
    if (alerts === null) return fs.el("span", { class: "health unknown" }, "…");
    const h = health(alerts);
    const text = long && h.worst ? `${h.worst.severity} · ${h.worst.message}` : h.label;
    const title = h.open.map((a) => `${a.severity} · ${a.rule}: ${a.message}`).join("\n") || "no open alerts";
    return fs.el("span", { class: `health ${h.level}`, title }, text);
  }

  // The step range to zoom to: the evidence range with some context either side.
  function zoomRange(a) {
    const ev = a.evidence || {};
    let x0 = Number.isFinite(ev.start_step) ? ev.start_step : (a.onset_step ?? a.step);
    let x1 = Number.isFinite(ev.end_step) ? ev.end_step : a.step;
    if (x0 > x1) [x0, x1] = [x1, x0];
    const pad = Math.max(2, Math.round((x1 - x0) * 0.15));
    return [Math.max(0, x0 - pad), x1 + pad];
  }

  function evidenceList(ev) {
    const items = [];
    if (Array.isArray(ev.series) && ev.series.length) {
      items.push(fs.el("li", {}, "series ", ...ev.series.flatMap((k, i) => [i ? ", " : "", fs.el("code", {}, k)])));
    }
    if (Number.isFinite(ev.start_step) || Number.isFinite(ev.end_step)) {
      items.push(fs.el("li", {}, `steps ${ev.start_step ?? "?"}–${ev.end_step ?? "?"}`));
    }
    for (const [k, v] of Object.entries(ev)) {
      if (k === "series" || k === "start_step" || k === "end_step") continue;
      const shown = typeof v === "number" ? fs.num(v) : typeof v === "string" ? v : JSON.stringify(v);
      items.push(fs.el("li", {}, fs.el("span", { class: "muted" }, `${k} `), shown.length > 120 ? `${shown.slice(0, 117)}…` : shown));
    }
    return items.length ? fs.el("ul", { class: "evidence" }, items) : null;
  }

  function item(a, selected, onSelect) {
    const when = a.onset_step != null && a.onset_step !== a.step ? `steps ${a.onset_step}–${a.step}` : `step ${a.step}`;
    const node = fs.el(
      "li",
      {
        class: `alert ${a.severity} ${a.status}${selected ? " selected" : ""}`,
        tabindex: "0", role: "button", "aria-pressed": selected ? "true" : "false",
        "data-alert-id": String(a.id),
        "aria-label": `${a.severity} ${a.rule} at ${when}: ${a.message}. Press Enter to zoom the charts to its evidence.`,
      },
      fs.el("div", { class: "alert-head" },
        fs.el("span", { class: `sev ${a.severity}` }, a.severity),
        fs.el("code", { class: "rule" }, a.rule),
        fs.el("span", { class: "muted" }, when),
        a.status !== "open" ? fs.el("span", { class: "muted" }, `· ${a.status}`) : null),
      fs.el("p", { class: "alert-msg" }, a.message),
      evidenceList(a.evidence || {}),
      a.remedy ? fs.el("p", { class: "remedy" }, fs.el("strong", {}, "Try: "), a.remedy) : null,
    );
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

  // Renders the panel; keeps keyboard focus on the alert that had it.
  function render(list, alerts, { selectedId = null, onSelect }) {
    const focusedId = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.alertId : undefined;
    const all = sorted(alerts);
    const open = all.filter((a) => a.status === "open");
    const closed = all.filter((a) => a.status !== "open");
    const nodes = open.map((a) => item(a, a.id === selectedId, onSelect));
    if (closed.length) {
      const det = fs.el("details", { class: "resolved" }, fs.el("summary", {}, `Resolved (${closed.length})`),
        fs.el("ul", { class: "alert-list" }, closed.map((a) => item(a, a.id === selectedId, onSelect))));
      if (closed.some((a) => a.id === selectedId)) det.open = true;
      nodes.push(fs.el("li", { class: "resolved-wrap" }, det));
    }
    list.replaceChildren(...nodes);
    if (focusedId !== undefined) {
      const again = list.querySelector(`[data-alert-id="${CSS.escape(focusedId)}"]`);
      if (again) again.focus();
    }
  }

  return { RANK, sorted, health, badge, zoomRange, render };
})();
