// The runs table: one page of runs at a time, filtered, sorted and searched by the server, so
// that 10,000 runs stay fast. Columns: name (with its short id, tags and notes), project,
// status, health (worst open alert), last step, start, duration and the user's metric columns
// (best/last/min/max of any key). Rename, tags, notes and delete from each row; tick runs to
// compare them. Everything the user chooses lives in the URL (the columns also in local storage).
import { API_PREFIX, PATHS } from "./protocol.js";
import { HttpError, api, runPath, decode, el, when, duration, num, debounce, params } from "./common.js";
import { subscribe } from "./live.js";

const $ = (id) => document.getElementById(id);
const COLS_KEY = "fitscope.runs.cols";
const DEFAULT_COLS = ["best:val/loss", "last:val/accuracy"];
const PAGE_SIZES = [25, 50, 100, 200];
const REFRESH_MS = 3000; // a page showing running runs is refreshed this often
const FILTERS = { q: "q", status: "status", "health-filter": "health", project: "project" }; // element id -> state
const FIXED = [
  // [label, sort key or null, class]
  ["Name", "name", "name"],
  ["Project", "project", "project"],
  ["Status", "status", "status-col"],
  ["Health", "health", "health-col"],
  ["Step", "step", "num"],
  ["Started", "created_at", "started"],
  ["Duration", "duration", "num"],
];
const selected = new Set();
let page = { rows: [], total: 0 };
let shown = "";
  let pending = null; // the run a dialog is about

// -- state in the URL -------------------------------------------------------------------
function state() {
  const p = params();
  let cols = p.getAll("col");
  if (!cols.length && !p.has("nocols")) {
    try {
      const saved = JSON.parse(localStorage.getItem(COLS_KEY) || "null");
      cols = Array.isArray(saved) ? saved.filter((c) => typeof c === "string") : DEFAULT_COLS;
    } catch {
      cols = DEFAULT_COLS;
    }
  }
  const size = Number(p.get("n")) || 50;
  return {
    q: p.get("q") || "",
    status: p.get("status") || "",
    health: p.get("health") || "",
    project: p.get("project") || "",
    tag: p.get("tag") || "",
    sort: p.get("sort") || "created_at",
    order: p.get("order") || "",
    page: Math.max(1, Number(p.get("page")) || 1),
    size: PAGE_SIZES.includes(size) ? size : 50,
    cols,
  };
}

function setState(updates) {
  const p = params();
  for (const [k, v] of Object.entries(updates)) {
    if (k === "cols") {
      p.delete("col");
      p.delete("nocols");
      for (const c of v) p.append("col", c);
      if (!v.length) p.set("nocols", "1");
      localStorage.setItem(COLS_KEY, JSON.stringify(v));
    } else if (v === null || v === "" || v === undefined) p.delete(k);
    else p.set(k, String(v));
  }
  if (!("page" in updates)) p.delete("page"); // any other change starts at the first page
  const q = p.toString();
  history.replaceState(history.state, "", `${location.pathname}${q ? `?${q}` : ""}${location.hash}`);
  load();
}

function apiQuery(st) {
  const p = new URLSearchParams();
  for (const k of ["q", "status", "health", "project", "tag"]) if (st[k]) p.set(k, st[k]);
  p.set("sort", st.sort);
  if (st.order) p.set("order", st.order);
  p.set("limit", st.size);
  p.set("offset", (st.page - 1) * st.size);
  for (const c of st.cols) p.append("metric", c);
  return p.toString();
}

// -- requests ---------------------------------------------------------------------------
async function request(method, path, body) {
  const resp = await fetch(path, {
    method,
    headers: { Accept: "application/json", ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!resp.ok) {
    let detail = `HTTP ${resp.status}`;
    try {
      const d = (await resp.json()).detail;
      detail = typeof d === "string" ? d : Array.isArray(d) ? d.map((x) => x.msg).join("; ") : detail;
    } catch { /* not JSON */ }
    const err = new HttpError(path, resp.status);
    err.detail = detail;
    throw err;
  }
  return resp;
}

// One request per view at a time: a second call while one for the same view is out asks
// for one more afterwards (changes may have arrived meanwhile) instead of racing it.
let inflight = null; // {query, again}
async function load() {
  const st = state();
  const query = apiQuery(st);
  if (inflight && inflight.query === query) {
    inflight.again = true;
    return;
  }
  const mine = { query, again: false };
  inflight = mine;
  try {
    const resp = await request("GET", `${PATHS.RUNS}?${query}`);
    const rows = await resp.json();
    if (query !== apiQuery(state())) return; // the view changed meanwhile: its own load draws it
    const total = Number(resp.headers.get("X-Total-Count") || rows.length);
    if (!rows.length && total > 0 && st.page > 1) {
      setState({ page: Math.max(1, Math.ceil(total / st.size)) }); // past the end (runs deleted)
      return;
    }
    page = { rows, total };
    render();
  } finally {
    if (inflight === mine) inflight = null;
  }
  if (mine.again) await load();
}

// -- rendering --------------------------------------------------------------------------
function colLabel(spec) {
  const i = spec.indexOf(":");
  return { agg: spec.slice(0, i), key: spec.slice(i + 1) };
}

function healthBadge(r) {
  if (r.status === "crashed" && r.health === "ok") {
    return el("span", { class: "health unknown", title: "the run crashed; no alert was raised" }, "no alerts");
  }
  if (r.health === "ok") return el("span", { class: "health ok", title: "no open alerts" }, "healthy");
  const more = r.open_alerts > 1 ? ` +${r.open_alerts - 1}` : "";
  return el("span", { class: `health ${r.health}`, title: `${r.open_alerts} open alert${r.open_alerts === 1 ? "" : "s"}` },
    `${r.health}: ${r.alert_rule}${more}`);
}

function runDuration(r) {
  if (r.status === "running") return duration(Date.now() - new Date(r.created_at));
  return r.duration_s == null ? "" : duration(r.duration_s * 1000);
}

function nameCell(r) {
  const href = `/runs/${encodeURIComponent(r.id)}`;
  return el("td", { class: "name" },
    el("div", { class: "name-line" },
      el("a", { href, "data-focus": `link:${r.id}` }, r.name),
      el("code", { class: "rid", title: `run id ${r.id}` }, r.id.slice(0, 8))),
    r.tags.length ? el("div", { class: "tags" }, r.tags.map((t) =>
      el("button", { type: "button", class: "tag", "data-tag": t, "data-focus": `tag:${r.id}:${t}`, title: `show runs tagged ${t}` }, t))) : null,
    r.notes ? el("div", { class: "notes muted", title: r.notes }, r.notes) : null);
}

function row(r, cols) {
  const picked = selected.has(r.id);
  return el("tr", { "data-run-id": r.id, class: picked ? "picked" : null },
    el("td", { class: "pick" }, el("input", {
      type: "checkbox", "data-focus": `pick:${r.id}`, "data-pick": r.id, checked: picked,
      "aria-label": `select ${r.name} (${r.id.slice(0, 8)}) for comparison`,
    })),
    nameCell(r),
    el("td", { class: "project" }, r.project),
    el("td", {}, el("span", { class: `status ${r.status}` }, r.status)),
    el("td", { class: "health-cell" }, healthBadge(r)),
    el("td", { class: "num step" }, r.last_step == null ? "–" : String(r.last_step)),
    el("td", { class: "muted started", title: r.created_at }, when(r.created_at)),
    el("td", { class: "muted num duration" }, runDuration(r)),
    cols.map((c) => el("td", { class: "num metric", "data-col": c }, num(decode([r.metrics[c]])[0]))),
    el("td", { class: "actions" },
      el("button", { type: "button", class: "ghost small", "data-edit": r.id, "data-focus": `edit:${r.id}`, "aria-label": `edit ${r.name} (${r.id.slice(0, 8)})` }, "Edit"),
      el("button", { type: "button", class: "ghost small danger", "data-delete": r.id, "data-focus": `delete:${r.id}`, "aria-label": `delete ${r.name} (${r.id.slice(0, 8)})` }, "Delete")));
}

function header(st) {
  const sortTh = (label, key, cls, extra = null) => {
    const on = st.sort === key;
    const desc = on && (st.order ? st.order === "desc" : page.defaultDesc);
    return el("th", { scope: "col", class: cls, "aria-sort": on ? (desc ? "descending" : "ascending") : null },
      el("button", { type: "button", class: "sort", "data-sort": key, "data-focus": `sort:${key}`, title: `sort by ${label}` },
        label, on ? el("span", { class: "arrow", "aria-hidden": "true" }, desc ? " ▼" : " ▲") : null),
      extra);
  };
  return el("thead", {}, el("tr", {},
    el("th", { class: "pick" }, el("span", { class: "visually-hidden" }, "compare")),
    FIXED.map(([label, key, cls]) => sortTh(label, key, cls)),
    st.cols.map((c) => {
      const { agg, key } = colLabel(c);
      return sortTh(`${key} (${agg})`, c, "num metric",
        el("button", { type: "button", class: "remove-col", "data-remove-col": c, "aria-label": `remove column ${key} (${agg})`, title: "remove this column" }, "×"));
    }),
    el("th", { class: "actions" }, el("span", { class: "visually-hidden" }, "actions"))));
}

function defaultDesc(sort) {
  if (["created_at", "health", "step", "duration"].includes(sort)) return true;
  if (!sort.includes(":")) return false;
  const { agg, key } = colLabel(sort);
  const higher = /(acc|accuracy|auc|auroc|f1|precision|recall|iou|map|bleu|rouge|score|top\d*|r2)$/i.test(key.split(/[/._-]/).pop());
  return agg === "max" || (agg !== "min" && higher);
}

function render(force = false) {
  const st = state();
  page.defaultDesc = defaultDesc(st.sort);
  const running = page.rows.some((r) => r.status === "running");
  const sig = JSON.stringify([st, page.rows, page.total, [...selected], running ? Math.floor(Date.now() / 1000) : 0]);
  if (!force && sig === shown) return;
  shown = sig;
  const focus = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.focus : null;
  $("table").replaceChildren(header(st), el("tbody", {}, page.rows.map((r) => row(r, st.cols))));
  $("table").hidden = page.total === 0;
  performance.mark("fitscope:rows-drawn"); // for bench/runs_page.py
  if (focus) {
    const again = document.querySelector(`[data-focus="${CSS.escape(focus)}"]`);
    if (again) again.focus();
  }
  const filtered = st.q || st.status || st.health || st.project || st.tag;
  $("empty").hidden = page.total > 0 || filtered;
  $("no-match").hidden = page.total > 0 || !filtered;
  const n = page.total;
  $("summary").textContent = n ? `${n.toLocaleString()} run${n === 1 ? "" : "s"}${filtered ? " match" + (n === 1 ? "es" : "") : ""}` : "";
  const first = (st.page - 1) * st.size;
  $("range").textContent = n ? `${(first + 1).toLocaleString()}–${(first + page.rows.length).toLocaleString()} of ${n.toLocaleString()}` : "";
  $("prev").disabled = st.page <= 1;
  $("next").disabled = first + page.rows.length >= n;
  $("pager").hidden = n <= st.size && st.page === 1;
  const k = selected.size;
  $("compare").disabled = k < 2;
  $("compare").textContent = k ? `Compare selected (${k})` : "Compare selected";
  $("tag-chip").hidden = !st.tag;
  $("tag-chip-name").textContent = st.tag;
}

// -- projects and keys for the filters --------------------------------------------------
async function loadProjects() {
  const want = state().project;
  const list = await api(`${API_PREFIX}/projects`);
  const names = list.map((p) => p.project);
  if (want && !names.includes(want)) names.push(want);
  $("project").replaceChildren(el("option", { value: "" }, "all"),
    ...names.map((p) => el("option", { value: p, selected: p === want }, p)));
}

let keysLoaded = false;
async function loadKeys() {
  if (keysLoaded) return;
  keysLoaded = true;
  const keys = await api(`${API_PREFIX}/keys`);
  $("keys").replaceChildren(...keys.map((k) => el("option", { value: k })));
}

// -- dialogs ----------------------------------------------------------------------------
function runById(id) {
  return page.rows.find((r) => r.id === id);
}

function openEdit(id) {
  const r = runById(id);
  if (!r) return;
  pending = r;
  $("edit-title").textContent = `Edit ${r.name} (${r.id.slice(0, 8)})`;
  $("edit-name").value = r.name;
  $("edit-tags").value = r.tags.join(", ");
  $("edit-notes").value = r.notes;
  $("edit-error").textContent = "";
  $("edit-dialog").showModal();
  $("edit-name").focus();
}

async function saveEdit(e) {
  e.preventDefault();
  const r = pending;
  const body = {
    name: $("edit-name").value.trim(),
    tags: $("edit-tags").value.split(",").map((t) => t.trim()).filter(Boolean),
    notes: $("edit-notes").value,
  };
  if (!body.name) {
    $("edit-error").textContent = "A run needs a name.";
    return;
  }
  try {
    await request("PATCH", runPath(r.id), body);
  } catch (err) {
    $("edit-error").textContent = `Not saved: ${err.detail || err.message}`;
    return;
  }
  $("edit-dialog").close();
  await load();
  loadProjects().catch(() => {});
}

function openDelete(id) {
  const r = runById(id);
  if (!r) return;
  pending = r;
  $("delete-what").textContent = `${r.name} (${r.id.slice(0, 8)}) in ${r.project}`;
  $("delete-error").textContent = "";
  $("delete-dialog").showModal();
  $("delete-cancel").focus(); // the safe choice is the default
}

async function confirmDelete(e) {
  e.preventDefault();
  const r = pending;
  try {
    await request("DELETE", runPath(r.id));
  } catch (err) {
    if (err.status !== 404) {
      $("delete-error").textContent = `Not deleted: ${err.detail || err.message}`;
      return;
    }
  }
  selected.delete(r.id);
  $("delete-dialog").close();
  await load();
  loadProjects().catch(() => {});
}

// -- wiring -----------------------------------------------------------------------------
function wire() {
  const st = state();
  for (const [id, param] of Object.entries(FILTERS)) {
    if (id === "project" && st.project) $(id).replaceChildren(el("option", { value: st.project, selected: true }, st.project));
    $(id).value = st[param];
  }
  $("n").value = String(st.size);
  // the first key after a pause (or a paste) searches at once; keys typed quickly after it
  // wait for a 150 ms pause, so that typing a word is one request, not one per letter
  const searchNow = () => setState({ q: $("q").value.trim() || null });
  const search = debounce(searchNow, 150);
  let lastKey = 0;
  $("q").addEventListener("input", () => {
    const now = Date.now();
    if (now - lastKey > 500) searchNow();
    else search();
    lastKey = now;
  });
  for (const id of ["status", "health-filter", "project"]) {
    $(id).addEventListener("change", () => setState({ [FILTERS[id]]: $(id).value || null }));
  }
  $("n").addEventListener("change", () => setState({ n: $("n").value === "50" ? null : $("n").value }));
  $("filters").addEventListener("submit", (e) => e.preventDefault());
  $("tag-clear").addEventListener("click", () => setState({ tag: null }));
  $("prev").addEventListener("click", () => setState({ page: Math.max(1, state().page - 1) }));
  $("next").addEventListener("click", () => setState({ page: state().page + 1 }));
  $("col-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const key = $("col-key").value.trim();
    if (!key) return;
    const spec = `${$("col-agg").value}:${key}`;
    const cols = state().cols.filter((c) => c !== spec);
    setState({ cols: [...cols, spec] });
    $("col-key").value = "";
  });
  $("table").addEventListener("click", (e) => {
    const t = e.target.closest("button");
    if (!t) return;
    const d = t.dataset;
    if (d.sort) {
      const cur = state();
      const desc = cur.sort === d.sort ? !(cur.order ? cur.order === "desc" : defaultDesc(cur.sort)) : defaultDesc(d.sort);
      setState({ sort: d.sort === "created_at" ? null : d.sort, order: desc === defaultDesc(d.sort) ? null : desc ? "desc" : "asc" });
    } else if (d.removeCol) {
      const cur = state();
      setState({ cols: cur.cols.filter((c) => c !== d.removeCol), ...(cur.sort === d.removeCol ? { sort: null, order: null } : {}) });
    } else if (d.tag) setState({ tag: d.tag });
    else if (d.edit) openEdit(d.edit);
    else if (d.delete) openDelete(d.delete);
  });
  $("table").addEventListener("change", (e) => {
    const id = e.target.dataset && e.target.dataset.pick;
    if (id === undefined) return;
    if (e.target.checked) selected.add(id);
    else selected.delete(id);
    render(true);
  });
  $("compare").addEventListener("click", () => {
    if (selected.size >= 2) location.href = `/compare?runs=${[...selected].map(encodeURIComponent).join(",")}`;
  });
  $("edit-form").addEventListener("submit", saveEdit);
  $("edit-cancel").addEventListener("click", () => $("edit-dialog").close());
  $("delete-form").addEventListener("submit", confirmDelete);
  $("delete-cancel").addEventListener("click", () => $("delete-dialog").close());
}

wire();
// the first rows before anything else (the live stream, the project list)
const first = load().catch((e) => console.warn(e));
const reload = debounce(() => load().catch((e) => console.warn(e)), 300);
subscribe({
  url: PATHS.EVENTS,
  handlers: {
    runs: reload,
    deleted(d) {
      selected.delete(d.id);
      reload();
    },
  },
  poll: load,
  interval: 2000,
  safety: load,
  onMode: (m) => { $("live-mode").textContent = m === "live" ? "live" : m === "polling" ? "live (polling)" : ""; },
});
// steps, health and durations of running runs change without a run event
setInterval(() => {
  if (page.rows.some((r) => r.status === "running")) load().catch((e) => console.warn(e));
}, REFRESH_MS);
first.then(() => loadProjects()).catch((e) => console.warn(e));
$("col-key").addEventListener("focus", () => loadKeys().catch((e) => console.warn(e))); // when wanted
