"use strict";
// The run page's metrics by key prefix: one collapsible group per prefix (train/, val/,
// grad_norm/, param_norm/, lr/, then the user's own), each holding a chart per key. Any key can
// be added as a chart and any chart removed; series that never change are listed with their
// value instead of drawn. The layout (closed groups, added and removed charts) is kept in the
// URL (?closed=&add=&hide=) and in local storage per project, so it survives a reload.
fs.runGroups = (() => {
  const ORDER = ["train", "val", "grad_norm", "param_norm", "lr", "wd"];
  const PER_GROUP = 4; // charts a group shows by default; the rest are one click away
  const HIDDEN_KEYS = new Set(["time/wall"]); // the clock: an x axis, not a metric
  const $ = (id) => document.getElementById(id);
  const layout = { closed: new Set(), add: new Set(), hide: new Set() };
  let built = ""; // signature of the groups' DOM
  let onChange = () => {};

  function groupOf(key) {
    const i = key.indexOf("/");
    return i > 0 ? key.slice(0, i) : "other";
  }

  function groupOrder(a, b) {
    const ia = ORDER.indexOf(a), ib = ORDER.indexOf(b);
    if (a === "other" || b === "other") return a === "other" ? 1 : -1;
    return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
  }

  function chartId(key) {
    return `k-${key.replace(/[^A-Za-z0-9_-]/g, (c) => `_${c.charCodeAt(0).toString(16)}`)}`;
  }

  function inOverview(key) {
    return Object.values(fs.runCharts.LINE).some((c) => c.match(key)) || fs.runCharts.isLayerKey(key);
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
  // (totals first), minus removed ones.
  function chosen(keys) {
    const fresh = keys.filter((k) => !inOverview(k) && !layout.hide.has(k));
    const byTotal = [...fresh].sort((a, b) => Number(b.endsWith("/total")) - Number(a.endsWith("/total")));
    const auto = byTotal.slice(0, PER_GROUP);
    return keys.filter((k) => layout.add.has(k) || (auto.includes(k) && !layout.hide.has(k)));
  }

  function groups(st) {
    const by = new Map();
    for (const k of scalarKeys(st)) {
      const g = groupOf(k);
      if (!by.has(g)) by.set(g, []);
      by.get(g).push(k);
    }
    return [...by.keys()].sort(groupOrder).map((g) => ({ name: g, keys: by.get(g), shown: chosen(by.get(g)) }));
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
    return fs.el("span", { class: "tools" },
      fs.el("label", {}, fs.el("input", { type: "checkbox", "data-log": id }), " log"),
      fs.el("button", { type: "button", class: "mini", "data-yreset": id, title: "reset the y range" }, "reset y"),
      fs.el("button", { type: "button", class: "mini", "data-csv": id, title: "download the shown data as CSV" }, "CSV"),
      fs.el("button", { type: "button", class: "mini", "data-remove": key, "aria-label": `remove the chart of ${key}`, title: "remove this chart" }, "×"));
  }

  function card(key) {
    const id = chartId(key);
    return fs.el("section", { class: "card", id: `card-${id}`, "data-chart": id, "data-key": key, tabindex: "-1" },
      fs.el("header", {}, fs.el("h3", {}, key), tools(id, key)),
      fs.el("div", { class: "chart", id: `chart-${id}`, role: "img", "aria-label": `${key} against the x axis` }),
      fs.el("p", { class: "empty-note", hidden: true }, `${key} has not changed: `, fs.el("span", { class: "const-value" }, "")));
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
      const det = fs.el("details", { class: "group-box", "data-group": g.name, open: !layout.closed.has(g.name) },
        fs.el("summary", {}, fs.el("span", { class: "group-name" }, g.name === "other" ? "other keys" : `${g.name}/`),
          fs.el("span", { class: "muted" }, ` ${g.keys.length} key${g.keys.length === 1 ? "" : "s"}, ${g.shown.length} chart${g.shown.length === 1 ? "" : "s"}${
            g.keys.some(inOverview) ? ` (${g.keys.filter(inOverview).length} in the overview above)` : ""}`)),
        fs.el("div", { class: "charts group-charts" }, g.shown.map((k) => keep.get(k) || card(k))),
        rest.length ? fs.el("p", { class: "add-chart" },
          fs.el("label", {}, "Add a chart ", fs.el("select", { "data-add-group": g.name, "aria-label": `add a chart to ${g.name}` },
            fs.el("option", { value: "" }, `(${rest.length} more)`), rest.map((k) => fs.el("option", { value: k }, k))))) : null);
      det.addEventListener("toggle", () => {
        if (det.open === !layout.closed.has(g.name)) return;
        if (det.open) layout.closed.delete(g.name); else layout.closed.add(g.name);
        save(st);
        onChange();
      });
      return det;
    });
    host.replaceChildren(...nodes);
    $("groups-empty").hidden = gs.length > 0;
    for (const k of keep.keys()) if (!gs.some((g) => g.shown.includes(k))) fs.runCharts.forgetChart(chartId(k));
    return true;
  }

  // A constant series' card says its value instead of drawing a flat line.
  function notes(st) {
    for (const c of charts(st)) {
      const el = document.querySelector(`#card-${c.id} .const-value`);
      if (!el) continue;
      const s = st.series.get(c.key);
      el.textContent = c.hidden ? `${fs.num(s.y[0], 6)} at every step (add it again to draw it anyway)` : "";
    }
  }

  function storageKey(st) {
    return `fitscope.layout.${(st.run && st.run.project) || "default"}`;
  }

  function encode(set) {
    return [...set].map(encodeURIComponent).join(",") || null;
  }

  function decode(text) {
    return new Set((text || "").split(",").filter(Boolean).map((x) => { try { return decodeURIComponent(x); } catch { return x; } }));
  }

  function save(st) {
    fs.setParams({ closed: encode(layout.closed), add: encode(layout.add), hide: encode(layout.hide) });
    try {
      localStorage.setItem(storageKey(st), JSON.stringify({ closed: [...layout.closed], add: [...layout.add], hide: [...layout.hide] }));
    } catch { /* storage may be off: the URL still holds the layout */ }
  }

  // The layout from the URL when it names one, else the project's last one.
  function load(st) {
    const p = fs.params();
    if (["closed", "add", "hide"].some((k) => p.get(k) !== null)) {
      layout.closed = decode(p.get("closed"));
      layout.add = decode(p.get("add"));
      layout.hide = decode(p.get("hide"));
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
    onChange = changed;
    $("groups").addEventListener("change", (e) => {
      const sel = e.target.closest("select[data-add-group]");
      if (!sel || !sel.value) return;
      layout.add.add(sel.value);
      layout.hide.delete(sel.value);
      save(st);
      changed();
    });
    $("groups").addEventListener("click", (e) => {
      const b = e.target.closest("button[data-remove]");
      if (!b) return;
      const key = b.dataset.remove;
      layout.add.delete(key);
      layout.hide.add(key);
      save(st);
      changed();
    });
  }

  return { groupOf, chartId, constant, groups, wanted, charts, render, notes, load, save, wire, layout };
})();
