// The run page's metrics by key prefix: one collapsible group per prefix (train/, val/,
// grad_norm/, param_norm/, lr/, then the user's own), each holding a chart per key. Any key can
// be added as a chart and any chart removed; series that never change are listed with their
// value instead of drawn. The layout (closed groups, added and removed charts) is kept in the
// URL (?closed=&add=&hide=) and in local storage per project, so it survives a reload.
import { el, num, params, setParams } from "./common.js";
import { constant, groups as metricGroups, inOverview, encodeSet, decodeSet } from "./metrics.js";
import * as runCharts from "./run-charts.js";

const $ = (id) => document.getElementById(id);
const layout = { closed: new Set(), add: new Set(), hide: new Set() };
let built = ""; // signature of the groups' DOM

function chartId(key) {
  return `k-${key.replace(/[^A-Za-z0-9_-]/g, (c) => `_${c.charCodeAt(0).toString(16)}`)}`;
}

function groups(st) {
  return metricGroups(st, layout);
}

// Keys whose series the groups need loaded: charts of open groups.
function wanted(st) {
  const out = [];
  for (const g of groups(st)) if (!layout.closed.has(g.name)) out.push(...g.shown);
  return out;
}

// The charts to draw: {id, key, hidden} (hidden: constant and not asked for).
function charts(st) {
  const out = [];
  for (const g of groups(st)) {
    if (layout.closed.has(g.name)) continue;
    for (const k of g.shown) {
      const s = st.series.get(k);
      if (!document.getElementById(`card-${chartId(k)}`)) continue;
      out.push({ id: chartId(k), key: k, hidden: !layout.add.has(k) && constant(s) });
    }
  }
  return out;
}

function tools(id, key) {
  return el("span", { class: "tools" },
    el("label", {}, el("input", { type: "checkbox", "data-log": id }), " log"),
    el("button", { type: "button", class: "mini", "data-yreset": id, title: "reset the y range" }, "reset y"),
    el("button", { type: "button", class: "mini", "data-csv": id, title: "download the shown data as CSV" }, "CSV"),
    el("button", { type: "button", class: "mini", "data-remove": key, "aria-label": `remove the chart of ${key}`, title: "remove this chart" }, "×"));
}

function card(key) {
  const id = chartId(key);
  return el("section", { class: "card", id: `card-${id}`, "data-chart": id, "data-key": key, tabindex: "-1" },
    el("header", {}, el("h3", {}, key), tools(id, key)),
    el("div", { class: "chart", id: `chart-${id}`, role: "img", "aria-label": `${key} against the x axis` }),
    el("p", { class: "empty-note", hidden: true }, `${key} has not changed: `, el("span", { class: "const-value" }, "")));
}

// (Re)builds the groups' DOM when the set of keys or the layout changed; charts are kept.
function render(st) {
  const gs = groups(st);
  const sig = JSON.stringify(gs.map((g) => [g.name, g.keys, g.shown, layout.closed.has(g.name)]));
  if (sig === built) return false;
  built = sig;
  const host = $("groups");
  const keep = new Map([...host.querySelectorAll("section.card[data-key]")].map((c) => [c.dataset.key, c]));
  const nodes = gs.map((g) => {
    const rest = g.keys.filter((k) => !g.shown.includes(k));
    const det = el("details", { class: "group-box", "data-group": g.name, open: !layout.closed.has(g.name) },
      el("summary", {}, el("span", { class: "group-name" }, g.name === "other" ? "other keys" : `${g.name}/`),
        el("span", { class: "muted" }, ` ${g.keys.length} key${g.keys.length === 1 ? "" : "s"}, ${g.shown.length} chart${g.shown.length === 1 ? "" : "s"}${
          g.keys.some(inOverview) ? ` (${g.keys.filter(inOverview).length} in the overview above)` : ""}`)),
      el("div", { class: "charts group-charts" }, g.shown.map((k) => keep.get(k) || card(k))),
      rest.length ? el("p", { class: "add-chart" },
        el("label", {}, "Add a chart ", el("select", { "data-add-group": g.name, "aria-label": `add a chart to ${g.name}` },
          el("option", { value: "" }, `(${rest.length} more)`), rest.map((k) => el("option", { value: k }, k))))) : null);
    return det;
  });
  host.replaceChildren(...nodes);
  $("groups-empty").hidden = gs.length > 0;
  for (const k of keep.keys()) if (!gs.some((g) => g.shown.includes(k))) runCharts.forgetChart(chartId(k));
  return true;
}

// A constant series' card says its value instead of drawing a flat line.
function notes(st) {
  for (const c of charts(st)) {
    const node = document.querySelector(`#card-${c.id} .const-value`);
    if (!node) continue;
    const s = st.series.get(c.key);
    node.textContent = c.hidden ? `${num(s.y[0], 6)} at every step (add it again to draw it anyway)` : "";
  }
}

function storageKey(st) {
  return `fitscope.layout.${(st.run && st.run.project) || "default"}`;
}

function save(st) {
  setParams({ closed: encodeSet(layout.closed), add: encodeSet(layout.add), hide: encodeSet(layout.hide) });
  try {
    localStorage.setItem(storageKey(st), JSON.stringify({ closed: [...layout.closed], add: [...layout.add], hide: [...layout.hide] }));
  } catch { /* storage may be off: the URL still holds the layout */ }
}

// The layout from the URL when it names one, else the project's last one.
function load(st) {
  const p = params();
  if (["closed", "add", "hide"].some((k) => p.get(k) !== null)) {
    layout.closed = decodeSet(p.get("closed"));
    layout.add = decodeSet(p.get("add"));
    layout.hide = decodeSet(p.get("hide"));
    return;
  }
  try {
    const saved = JSON.parse(localStorage.getItem(storageKey(st)) || "null");
    if (saved) {
      layout.closed = new Set(saved.closed || []);
      layout.add = new Set(saved.add || []);
      layout.hide = new Set(saved.hide || []);
      save(st);
    }
  } catch { /* a broken entry: defaults */ }
}

function wire(st, changed) {
  $("groups").addEventListener("change", (e) => {
    const sel = e.target.closest("select[data-add-group]");
    if (!sel || !sel.value) return;
    layout.add.add(sel.value);
    layout.hide.delete(sel.value);
    save(st);
    changed();
  });
  $("groups").addEventListener("click", (e) => {
    // opening or closing a group (mouse, or Enter/Space on its summary): the layout decides, not
    // the element's toggle event, which a box (re)built open also fires, later, and which would
    // then undo a click made in between
    const summary = e.target.closest("details.group-box > summary");
    if (summary) {
      e.preventDefault();
      const det = summary.parentElement;
      const name = det.dataset.group;
      if (layout.closed.has(name)) layout.closed.delete(name); else layout.closed.add(name);
      det.open = !layout.closed.has(name);
      save(st);
      changed();
      return;
    }
    const b = e.target.closest("button[data-remove]");
    if (!b) return;
    const key = b.dataset.remove;
    layout.add.delete(key);
    layout.hide.add(key);
    save(st);
    changed();
  });
}

export { chartId, groups, wanted, charts, render, notes, load, save, wire, layout };
