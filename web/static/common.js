// Shared helpers: API access, the wire encoding of non-finite floats, safe DOM building,
// number formatting, theme colours for charts, and the page's URL state.
import { NON_FINITE, PATHS } from "./protocol.js";

class HttpError extends Error {
  constructor(path, status) {
    super(`${path}: HTTP ${status}`);
    this.status = status;
  }
}

async function api(path) {
  const resp = await fetch(path, { headers: { Accept: "application/json" } });
  if (!resp.ok) throw new HttpError(path, resp.status);
  return resp.json();
}

function runPath(runId, rest = "") {
  return `${PATHS.RUNS}/${encodeURIComponent(runId)}${rest}`;
}

function decode(values) {
  return values == null ? values : values.map((v) => (typeof v === "string" ? NON_FINITE[v] : v));
}

// Builds elements with textContent only: user-supplied strings are never parsed as HTML.
// Attributes are set with setAttribute; `on` is not accepted (no inline handlers anywhere).
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) throw new Error("no inline event handlers");
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

// Plotly renders a small subset of HTML in titles, legend names and hover text; escaping the
// three markup characters as entities makes it show a user's string exactly as typed.
function plotText(s) {
  return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function when(iso) {
  const d = new Date(iso);
  return isNaN(d) ? "" : d.toLocaleString();
}

function duration(ms) {
  if (!(ms >= 0)) return "";
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  return h < 48 ? `${h}h ${m % 60}m` : `${Math.floor(h / 24)}d ${h % 24}h`;
}

// A number for people: NaN and infinities spelled out, never blank.
function num(v, digits = 4) {
  if (v === null || v === undefined) return "–";
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "−Inf";
  if (typeof v !== "number") return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e6) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
  return String(Number(v.toPrecision(digits)));
}

function pct(v) {
  return Number.isFinite(v) ? `${(v * 100).toFixed(1)}%` : num(v);
}

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

// Chart colours taken from the stylesheet, so charts follow the light or dark theme.
function theme() {
  const dark = document.documentElement.style.colorScheme === "dark"; // set by theme.js
  return {
    dark,
    paper: cssVar("--card"),
    fg: cssVar("--fg"),
    muted: cssVar("--muted"),
    grid: cssVar("--line"),
    ok: cssVar("--ok"),
    warn: cssVar("--warn"),
    crit: cssVar("--crit"),
    info: cssVar("--accent"),
    palette: cssVar("--palette").split(/\s+/).filter(Boolean),
  };
}

function severityColor(t, severity) {
  return severity === "critical" ? t.crit : severity === "warning" ? t.warn : t.info;
}

function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

// The page's state lives in its query string, so that every view is a link.
function params() {
  return new URLSearchParams(location.search);
}

function setParams(updates) {
  const p = params();
  for (const [k, v] of Object.entries(updates)) {
    if (v === null || v === undefined || v === "" || v === false) p.delete(k);
    else p.set(k, String(v));
  }
  const q = p.toString();
  history.replaceState(history.state, "", `${location.pathname}${q ? `?${q}` : ""}${location.hash}`);
}

export {
  HttpError, api, runPath, decode, el, plotText, when, duration, num, pct, theme, severityColor,
  debounce, params, setParams,
};
