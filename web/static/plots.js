"use strict";
// Plotly figure pieces shared by the run and compare pages: themed layouts, a series drawn as a
// line with its min/max band (so no spike hides in a reduction), visible markers for NaN/±Inf,
// alert markers with shaded evidence ranges, and a y range fitted to the visible steps.
fs.plots = (() => {
  const CONFIG = {
    responsive: true,
    displaylogo: false,
    modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"],
  };
  const MARK_Y = { top: 0.95, bottom: 0.05, alert: 0.02 }; // on the hidden 0..1 axis "y2"

  function rgba(hex, a) {
    const m = /^#?([0-9a-f]{6})$/i.exec(hex || "");
    if (!m) return hex;
    const n = parseInt(m[1], 16);
    return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${a})`;
  }

  function finite(v) {
    return Number.isFinite(v) ? v : null;
  }

  function layout(t, { log = false, range = null, yRange = null, xTitle = "step", height } = {}) {
    const out = {
      paper_bgcolor: t.paper,
      plot_bgcolor: t.paper,
      font: { color: t.fg, size: 12, family: "system-ui, -apple-system, 'Segoe UI', sans-serif" },
      margin: { l: 58, r: 14, t: 8, b: 38 },
      hovermode: "x unified",
      hoverlabel: { bgcolor: t.paper, bordercolor: t.grid, font: { color: t.fg } },
      xaxis: {
        title: { text: xTitle, standoff: 4, font: { size: 11, color: t.muted } },
        gridcolor: t.grid, zerolinecolor: t.grid, linecolor: t.grid,
        autorange: !range, range: range || undefined,
      },
      yaxis: {
        type: log ? "log" : "linear", gridcolor: t.grid, zerolinecolor: t.grid, linecolor: t.grid,
        fixedrange: true, exponentformat: "power",
        autorange: !yRange, range: yRange || undefined,
      },
      yaxis2: { overlaying: "y", range: [0, 1], visible: false, fixedrange: true, tickmode: "auto" },
      legend: { orientation: "h", x: 0, y: 1.0, yanchor: "bottom", bgcolor: "rgba(0,0,0,0)", font: { size: 11 } },
      shapes: [],
      dragmode: "zoom",
    };
    if (height) out.height = height;
    return out;
  }

  // A series as traces: min/max band (when reduced), the line (raw, faded when smoothed), the
  // smoothed line, and NaN/±Inf markers pinned to the top/bottom edge of the plot.
  function seriesTraces(t, key, view, { color, name, smoothing = 0, markers = false, width = 1.6, legend = true } = {}) {
    const label = fs.plotText(name || key);
    const out = [];
    if (view.reduced) {
      const hi = view.hi.map((v, i) => finite(v === null ? view.y[i] : v));
      const lo = view.lo.map((v, i) => finite(v === null ? view.y[i] : v));
      out.push({
        x: view.x, y: hi, type: "scatter", mode: "lines", line: { width: 0, color },
        hoverinfo: "skip", showlegend: false, meta: { role: "band", key },
      });
      out.push({
        x: view.x, y: lo, type: "scatter", mode: "lines", line: { width: 0, color },
        fill: "tonexty", fillcolor: rgba(color, 0.22), hoverinfo: "skip", showlegend: false,
        meta: { role: "band", key },
      });
    }
    const y = view.y.map(finite);
    const smoothed = smoothing > 0 ? fs.ema(view.y, smoothing) : null;
    out.push({
      x: view.x, y, type: "scatter", mode: markers ? "lines+markers" : "lines", name: label,
      line: { color, width: smoothed ? 1 : width }, marker: { size: 5, color },
      opacity: smoothed ? 0.35 : 1, showlegend: legend && !smoothed,
      hoverinfo: smoothed ? "skip" : undefined, legendgroup: label,
      meta: { role: "line", key },
    });
    if (smoothed) {
      out.push({
        x: view.x, y: smoothed, type: "scatter", mode: markers ? "lines+markers" : "lines",
        name: label, line: { color, width }, marker: { size: 4, color }, legendgroup: label,
        showlegend: legend, meta: { role: "smooth", key },
      });
    }
    const nf = nonFiniteTrace(t, key, view, name);
    if (nf) out.push(nf);
    return out;
  }

  function nonFiniteTrace(t, key, view, name) {
    const xs = [], ys = [], text = [], symbols = [];
    const label = name || key;
    for (let i = 0; i < view.x.length; i++) {
      const v = view.y[i];
      const hi = view.hi[i];
      const lo = view.lo[i];
      let what = null, y = MARK_Y.top, symbol = "x";
      if (Number.isNaN(v)) what = view.lo[i] === null ? "NaN" : "NaN in this range";
      else if (v === Infinity || hi === Infinity) { what = "+Inf"; symbol = "triangle-up"; }
      else if (v === -Infinity || lo === -Infinity) { what = "−Inf"; y = MARK_Y.bottom; symbol = "triangle-down"; }
      if (what === null) continue;
      xs.push(view.x[i]);
      ys.push(y);
      symbols.push(symbol);
      text.push(fs.plotText(`${label} = ${what} at step ${view.x[i]}`));
    }
    if (!xs.length) return null;
    return {
      x: xs, y: ys, yaxis: "y2", type: "scatter", mode: "markers",
      name: fs.plotText(`${label}: NaN/Inf (${xs.length})`),
      marker: { symbol: symbols, size: 10, color: t.crit, line: { width: 2, color: t.crit } },
      text, hoverinfo: "text", meta: { role: "nonfinite", key },
    };
  }

  // Alerts as shaded evidence ranges, a dotted line where each was raised, and a clickable marker.
  function alertDecor(t, alerts, selectedId) {
    const shapes = [];
    const xs = [], ys = [], text = [], colors = [], symbols = [], ids = [];
    for (const a of alerts) {
      const c = fs.severityColor(t, a.severity);
      const ev = a.evidence || {};
      const sel = a.id === selectedId;
      if (Number.isFinite(ev.start_step) && Number.isFinite(ev.end_step)) {
        const x0 = Math.min(ev.start_step, ev.end_step);
        const x1 = Math.max(ev.start_step, ev.end_step);
        shapes.push({
          type: "rect", xref: "x", yref: "paper", x0: x0 === x1 ? x0 - 0.5 : x0, x1: x0 === x1 ? x1 + 0.5 : x1,
          y0: 0, y1: 1, fillcolor: rgba(c, sel ? 0.13 : a.status === "open" ? 0.07 : 0.04),
          line: { width: sel ? 1.5 : 0, color: c }, layer: "below",
        });
      }
      shapes.push({
        type: "line", xref: "x", yref: "paper", x0: a.step, x1: a.step, y0: 0, y1: 1,
        line: { color: c, width: sel ? 2 : 1, dash: "dot" }, layer: "below",
      });
      xs.push(a.step);
      ys.push(MARK_Y.alert);
      colors.push(c);
      symbols.push(a.severity === "critical" ? "diamond" : a.severity === "warning" ? "triangle-up" : "circle");
      ids.push(a.id);
      text.push(fs.plotText(`${a.severity} · ${a.rule} at step ${a.step}: ${a.message}`));
    }
    const trace = xs.length ? {
      x: xs, y: ys, yaxis: "y2", type: "scatter", mode: "markers", name: "alerts",
      marker: { size: 12, color: colors, symbol: symbols, line: { width: 1, color: t.paper } },
      text, hoverinfo: "text", customdata: ids, meta: { role: "alerts" }, showlegend: false,
    } : null;
    return { shapes, trace };
  }

  // Whether a y axis should be logarithmic when the user has not said: when every finite value
  // is positive and they span more than four orders of magnitude (a blow-up next to a healthy
  // phase is unreadable on a linear axis).
  function autoLog(traces) {
    let lo = Infinity, hi = -Infinity;
    for (const tr of traces) {
      if (tr.yaxis === "y2" || !tr.y || !tr.meta || tr.meta.role !== "line") continue;
      for (const v of tr.y) {
        if (v === null || !Number.isFinite(v)) continue;
        if (v <= 0) return false;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    }
    return hi >= lo && hi / lo > 1e4;
  }

  // The y range that fits what is visible between x0 and x1 (Plotly's autorange fits all data).
  function fitY(traces, x0, x1, log) {
    let lo = Infinity, hi = -Infinity;
    for (const tr of traces) {
      if (tr.yaxis === "y2" || !tr.x || !tr.y || tr.type === "heatmap") continue;
      for (let i = 0; i < tr.x.length; i++) {
        const x = tr.x[i];
        const v = tr.y[i];
        if (x < x0 || x > x1 || !Number.isFinite(v) || (log && v <= 0)) continue;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    }
    if (!(hi >= lo)) return null;
    if (log) {
      const a = Math.log10(lo), b = Math.log10(hi);
      const pad = Math.max((b - a) * 0.08, 0.05);
      return [a - pad, b + pad];
    }
    const pad = Math.max((hi - lo) * 0.08, Math.abs(hi) * 0.02, 1e-12);
    return [lo - pad, hi + pad];
  }

  // Draws into a chart element; the first draw attaches Plotly's events through `init(div)`.
  function draw(div, data, lay, init) {
    const first = !div.classList.contains("js-plotly-plot");
    const p = Plotly.react(div, data, lay, CONFIG);
    if (first && init) p.then(() => init(div));
    return p;
  }

  // The step range from a plotly_relayout event: [x0, x1], "auto" (reset) or null (no change).
  function relayoutRange(ev) {
    if (!ev) return null;
    if (ev["xaxis.autorange"] === true) return "auto";
    const r = ev["xaxis.range"] || (ev["xaxis.range[0]"] !== undefined ? [ev["xaxis.range[0]"], ev["xaxis.range[1]"]] : null);
    if (!r) return null;
    const a = Number(r[0]), b = Number(r[1]);
    return Number.isFinite(a) && Number.isFinite(b) ? [Math.min(a, b), Math.max(a, b)] : null;
  }

  return { CONFIG, rgba, layout, seriesTraces, alertDecor, autoLog, fitY, draw, relayoutRange };
})();
