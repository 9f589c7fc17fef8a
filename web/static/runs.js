"use strict";
// The runs list: grouped by project, each run with its status and a live health badge (its worst
// open alert); search, filters and sort live in the URL; tick runs to compare them.
(() => {
  const $ = (id) => document.getElementById(id);
  const runs = new Map(); // id -> run
  const alerts = new Map(); // id -> alert list (absent until fetched)
  const fetched = new Map(); // id -> {updated, at}: when its alerts were last fetched
  const selected = new Set();
  const ALERTS_EVERY_MS = 2000; // a running run's badge is refreshed this often
  const FILTERS = ["q", "status", "health-filter", "project", "sort"];
  const PARAM = { q: "q", status: "status", "health-filter": "health", project: "project", sort: "sort" };
  let shown = "";

  function healthLevel(id) {
    const list = alerts.get(id);
    return list ? fs.alerts.health(list).level : null;
  }

  function healthRank(id) {
    const lvl = healthLevel(id);
    return lvl === null ? -1 : lvl === "ok" ? 0 : fs.alerts.RANK[lvl] || 0;
  }

  // A crashed run with no open alert is not "healthy": say only that nothing was diagnosed.
  function badge(r) {
    if (!alerts.has(r.id)) return fs.alerts.badge(null);
    if (r.status === "crashed" && healthLevel(r.id) === "ok") {
      return fs.el("span", { class: "health unknown", title: "the run crashed; no alert was raised" }, "no alerts");
    }
    return fs.alerts.badge(alerts.get(r.id));
  }

  function ranFor(r) {
    const end = r.finished_at || (r.status === "running" ? Date.now() : r.heartbeat_at);
    return fs.duration(new Date(end) - new Date(r.created_at));
  }

  function matches(r, f) {
    if (f.status && r.status !== f.status) return false;
    if (f.project && r.project !== f.project) return false;
    if (f.health) {
      const lvl = healthLevel(r.id);
      const bad = lvl === "critical" || lvl === "warning";
      const ok = (lvl === "ok" || lvl === "info") && r.status !== "crashed"; // info: notes, not problems
      if (f.health === "problem" ? !bad : f.health === "ok" ? !ok : lvl !== f.health) return false;
    }
    if (f.q) {
      const q = f.q.toLowerCase();
      if (![r.name, r.project, r.id].some((s) => s.toLowerCase().includes(q))) return false;
    }
    return true;
  }

  const SORTS = {
    new: (a, b) => new Date(b.created_at) - new Date(a.created_at),
    old: (a, b) => new Date(a.created_at) - new Date(b.created_at),
    name: (a, b) => a.name.localeCompare(b.name),
    health: (a, b) => healthRank(b.id) - healthRank(a.id) || SORTS.new(a, b),
    status: (a, b) => a.status.localeCompare(b.status) || SORTS.new(a, b),
  };

  function filters() {
    return { q: $("q").value.trim(), status: $("status").value, health: $("health-filter").value, project: $("project").value, sort: $("sort").value || "new" };
  }

  function row(r) {
    const href = `/runs/${encodeURIComponent(r.id)}`;
    return fs.el("tr", { "data-run-id": r.id, class: selected.has(r.id) ? "picked" : null },
      fs.el("td", { class: "pick" }, fs.el("input", {
        type: "checkbox", "data-focus": `pick:${r.id}`, "data-pick": r.id, checked: selected.has(r.id),
        "aria-label": `select ${r.name} for comparison`,
      })),
      fs.el("td", { class: "name" }, fs.el("a", { href, "data-focus": `link:${r.id}` }, r.name)),
      fs.el("td", {}, fs.el("span", { class: `status ${r.status}` }, r.status)),
      fs.el("td", {}, badge(r)),
      fs.el("td", { class: "muted" }, fs.when(r.created_at)),
      fs.el("td", { class: "muted num" }, ranFor(r)));
  }

  function renderProjects() {
    const sel = $("project");
    const want = sel.value || fs.params().get("project") || "";
    const projects = [...new Set([...runs.values()].map((r) => r.project))].sort();
    if (projects.length + 1 === sel.options.length) return;
    sel.replaceChildren(fs.el("option", { value: "" }, "all"), ...projects.map((p) => fs.el("option", { value: p, selected: p === want }, p)));
  }

  function render(force = false) {
    renderProjects();
    const f = filters();
    const all = [...runs.values()];
    const sig = JSON.stringify([f, all, [...alerts], [...selected], Math.floor(Date.now() / 1000)]);
    if (!force && sig === shown) return;
    shown = sig;
    const list = all.filter((r) => matches(r, f)).sort(SORTS[f.sort] || SORTS.new);
    const groups = new Map();
    for (const r of list) {
      if (!groups.has(r.project)) groups.set(r.project, []);
      groups.get(r.project).push(r);
    }
    const focus = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.focus : null;
    $("groups").replaceChildren(...[...groups].map(([project, rs]) => {
      const bad = rs.filter((r) => ["critical", "warning"].includes(healthLevel(r.id))).length;
      return fs.el("section", { class: "group", "data-project": project },
        fs.el("h2", {}, project, fs.el("span", { class: "muted" }, ` ${rs.length} run${rs.length === 1 ? "" : "s"}${bad ? ` · ${bad} with open alerts` : ""}`)),
        fs.el("table", { class: "runs" },
          fs.el("thead", {}, fs.el("tr", {},
            fs.el("th", { class: "pick" }, fs.el("span", { class: "visually-hidden" }, "compare")),
            ["Name", "Status", "Health", "Started", "Ran"].map((h) => fs.el("th", { scope: "col" }, h)))),
          fs.el("tbody", {}, rs.map(row))));
    }));
    if (focus) {
      const again = $("groups").querySelector(`[data-focus="${CSS.escape(focus)}"]`);
      if (again) again.focus();
    }
    $("empty").hidden = runs.size > 0;
    $("no-match").hidden = runs.size === 0 || list.length > 0;
    const running = all.filter((r) => r.status === "running").length;
    const bad = all.filter((r) => ["critical", "warning"].includes(healthLevel(r.id))).length;
    $("summary").textContent = all.length ? `${all.length} runs · ${running} running · ${bad} with open alerts` : "";
    const n = selected.size;
    $("compare").disabled = n < 2;
    $("compare").textContent = n ? `Compare selected (${n})` : "Compare selected";
  }

  async function refreshAlerts() {
    const now = Date.now();
    const due = [...runs.values()].filter((r) => {
      const f = fetched.get(r.id);
      if (!f) return true;
      if (now - f.at < ALERTS_EVERY_MS) return false;
      return r.status === "running" || f.updated !== r.updated_at;
    });
    const queue = [...due];
    const worker = async () => {
      while (queue.length) {
        const r = queue.shift();
        try {
          alerts.set(r.id, await fs.api(fs.runPath(r.id, "/alerts")));
          fetched.set(r.id, { updated: r.updated_at, at: Date.now() });
        } catch (err) {
          if (err.status === 404) runs.delete(r.id);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(6, queue.length) }, worker));
    render();
  }

  async function poll() {
    const list = await fs.api("/api/v1/runs");
    runs.clear();
    for (const r of list) runs.set(r.id, r);
    for (const id of [...selected]) if (!runs.has(id)) selected.delete(id);
    render();
    await refreshAlerts();
  }

  function wire() {
    const p = fs.params();
    for (const id of FILTERS) {
      const v = p.get(PARAM[id]);
      if (v !== null) $(id).value = v;
      $(id).addEventListener(id === "q" ? "input" : "change", () => {
        fs.setParams({ [PARAM[id]]: $(id).value || null });
        render(true);
      });
    }
    if (p.get("project")) $("project").replaceChildren(fs.el("option", { value: p.get("project"), selected: true }, p.get("project")));
    $("filters").addEventListener("submit", (e) => e.preventDefault());
    $("groups").addEventListener("change", (e) => {
      const id = e.target.dataset && e.target.dataset.pick;
      if (id === undefined) return;
      if (e.target.checked) selected.add(id);
      else selected.delete(id);
      render(true);
    });
    $("compare").addEventListener("click", () => {
      if (selected.size >= 2) location.href = `/compare?runs=${[...selected].map(encodeURIComponent).join(",")}`;
    });
  }

  wire();
  fs.live.subscribe({
    url: "/api/v1/events/runs",
    handlers: {
      runs(list) {
        for (const r of Array.isArray(list) ? list : [list]) runs.set(r.id, r);
        render();
        refreshAlerts();
      },
      deleted(d) {
        runs.delete(d.id);
        alerts.delete(d.id);
        selected.delete(d.id);
        render();
      },
    },
    poll,
    interval: 1000,
    safety: poll,
    onMode: (m) => { $("live-mode").textContent = m === "live" ? "live" : m === "polling" ? "live (polling)" : ""; },
  });
  setInterval(() => refreshAlerts().catch((e) => console.warn(e)), ALERTS_EVERY_MS);
})();
