// Confidence and calibration from the `val/confidence` histograms: per bin the number of
// predictions (`counts`), how many were right (`correct`) and the sum of their confidences
// (`conf_sum`). ECE is exact from these: sum over bins of |correct - conf_sum| / N.
import { decode, pct } from "./common.js";
import * as plots from "./plots.js";

function stats(h) {
  const edges = decode(h.edges);
  const counts = decode(h.counts);
  const correct = h.correct ? decode(h.correct) : null;
  const confSum = h.conf_sum ? decode(h.conf_sum) : null;
  const bins = [];
  let n = 0, right = 0, conf = 0, gap = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i] ?? 0; // a NaN stays NaN: it must show, not vanish
    const b = { lo: edges[i], hi: edges[i + 1], center: (edges[i] + edges[i + 1]) / 2, count: c };
    b.width = b.hi - b.lo;
    if (correct) b.correct = correct[i] ?? 0;
    if (confSum) b.confSum = confSum[i] ?? 0;
    if (c > 0 && correct) b.acc = b.correct / c;
    if (c > 0 && confSum) b.conf = b.confSum / c;
    n += c;
    if (correct) right += b.correct;
    if (confSum) conf += b.confSum;
    if (correct && confSum) gap += Math.abs(b.correct - b.confSum);
    bins.push(b);
  }
  const calibrated = Boolean(correct && confSum && n > 0);
  return {
    step: h.step, bins, n,
    acc: correct && n ? right / n : null,
    meanConf: confSum && n ? conf / n : null,
    ece: calibrated ? gap / n : null,
  };
}

function ece(h) {
  return stats(h).ece;
}

function axes(t, xTitle, yTitle) {
  return {
    xaxis: { title: { text: xTitle, standoff: 4, font: { size: 11, color: t.muted } }, range: [0, 1], gridcolor: t.grid, zerolinecolor: t.grid, fixedrange: true },
    yaxis: { title: { text: yTitle, font: { size: 11, color: t.muted } }, gridcolor: t.grid, zerolinecolor: t.grid, fixedrange: true },
  };
}

function base(t) {
  return {
    paper_bgcolor: t.paper, plot_bgcolor: t.paper,
    font: { color: t.fg, size: 12, family: "system-ui, -apple-system, 'Segoe UI', sans-serif" },
    margin: { l: 58, r: 14, t: 8, b: 38 },
    legend: { orientation: "h", x: 0, y: 1.0, yanchor: "bottom", font: { size: 11 } },
    hoverlabel: { bgcolor: t.paper, bordercolor: t.grid, font: { color: t.fg } },
  };
}

function binLabel(b) {
  return `${b.lo.toFixed(2)}–${b.hi.toFixed(2)}`;
}

// Counts per confidence bin, split into right and wrong predictions when known.
function histogramFigure(t, s) {
  const x = s.bins.map((b) => b.center);
  const w = s.bins.map((b) => b.width * 0.92);
  const data = [];
  if (s.bins.length && s.bins[0].correct !== undefined) {
    data.push({
      type: "bar", x, width: w, y: s.bins.map((b) => b.correct), name: "correct",
      marker: { color: plots.rgba(t.ok, 0.85) },
      hovertext: s.bins.map((b) => `${binLabel(b)}: ${b.correct} of ${b.count} correct`), hoverinfo: "text",
    });
    data.push({
      type: "bar", x, width: w, y: s.bins.map((b) => b.count - b.correct), name: "wrong",
      marker: { color: plots.rgba(t.crit, 0.75) },
      hovertext: s.bins.map((b) => `${binLabel(b)}: ${b.count - b.correct} of ${b.count} wrong`), hoverinfo: "text",
    });
  } else {
    data.push({
      type: "bar", x, width: w, y: s.bins.map((b) => b.count), name: "predictions",
      marker: { color: t.info }, hovertext: s.bins.map((b) => `${binLabel(b)}: ${b.count}`), hoverinfo: "text",
    });
  }
  // side by side on a log count axis: the few wrong predictions stay readable next to
  // thousands of right ones (an empty bin draws no bar)
  const layout = { ...base(t), ...axes(t, "max softmax confidence", "predictions (log)"), barmode: "group", hovermode: "closest" };
  const top = Math.max(1, ...data.flatMap((d) => d.y.filter((v) => v > 0)));
  Object.assign(layout.yaxis, {
    type: "log", range: [-0.1, Math.log10(top) + 0.15], dtick: 1, exponentformat: "power", minor: { showgrid: false },
  });
  for (const d of data) d.width = d.width.map((w) => w / (data.length > 1 ? 2 : 1));
  if (data.length > 1) data[0].offset = data[0].width.map((w) => -w);
  if (data.length > 1) data[1].offset = data[1].width.map(() => 0);
  return { data, layout };
}

// Accuracy per confidence bin against the diagonal of perfect calibration; the red part of each
// bar is the gap between confidence and accuracy (above the bar: overconfident).
function reliabilityFigure(t, s) {
  const used = s.bins.filter((b) => b.count > 0 && b.acc !== undefined && b.conf !== undefined);
  const data = [
    {
      type: "scatter", mode: "lines", x: [0, 1], y: [0, 1], name: "perfect calibration",
      line: { color: t.muted, dash: "dash", width: 1 }, hoverinfo: "skip",
    },
    {
      type: "bar", x: used.map((b) => b.center), width: used.map((b) => b.width * 0.92),
      y: used.map((b) => b.acc), name: "accuracy", marker: { color: plots.rgba(t.info, 0.85) },
      hovertext: used.map((b) => `${binLabel(b)}: accuracy ${pct(b.acc)}, mean confidence ${pct(b.conf)}, n=${b.count}`),
      hoverinfo: "text",
    },
    {
      type: "bar", x: used.map((b) => b.center), width: used.map((b) => b.width * 0.92),
      base: used.map((b) => b.acc), y: used.map((b) => b.conf - b.acc), name: "gap to confidence",
      marker: {
        color: "rgba(0, 0, 0, 0)", line: { color: t.crit, width: 1 },
        pattern: { shape: "/", fgcolor: t.crit, bgcolor: "rgba(0, 0, 0, 0)", size: 6, solidity: 0.25 },
      },
      hoverinfo: "skip",
    },
  ];
  const layout = { ...base(t), ...axes(t, "confidence", "accuracy"), barmode: "overlay", hovermode: "closest" };
  layout.yaxis.range = [0, 1];
  layout.annotations = s.ece === null ? [] : [{
    xref: "paper", yref: "paper", x: 0.02, y: 0.97, xanchor: "left", yanchor: "top", showarrow: false,
    text: `ECE ${pct(s.ece)}`, font: { size: 14, color: t.fg },
    bgcolor: plots.rgba(t.paper, 0.8),
  }];
  return { data, layout };
}

// How the confidence distribution moved across evaluations (share of predictions per bin),
// with the mean confidence and the accuracy of each evaluation drawn over it.
function evolutionFigure(t, all, range, axis = null) {
  const ax = axis || { map: (v) => v, type: "linear", title: "step" };
  const steps = all.map((s) => s.step);
  const x = steps.map(ax.map);
  const nb = all.length ? all[all.length - 1].bins.length : 0;
  const y = nb ? all[all.length - 1].bins.map((b) => b.center) : [];
  const z = y.map((_, j) => all.map((s) => (s.n && s.bins[j] ? s.bins[j].count / s.n : null)));
  const data = [{
    type: "heatmap", x, y, z, zmin: 0, colorscale: [[0, t.paper], [1, t.info]], showscale: true,
    colorbar: { thickness: 10, len: 0.9, tickformat: ".0%", outlinewidth: 0, tickfont: { size: 10 } },
    customdata: y.map(() => steps),
    hovertemplate: "step %{customdata}<br>confidence %{y:.2f}<br>%{z:.1%} of predictions<extra></extra>",
    name: "share of predictions", showlegend: false,
  }];
  if (all.some((s) => s.meanConf !== null)) {
    data.push({
      type: "scatter", mode: "lines+markers", x, y: all.map((s) => s.meanConf), name: "mean confidence",
      line: { color: t.warn, width: 2 }, marker: { size: 5 },
    });
  }
  if (all.some((s) => s.acc !== null)) {
    data.push({
      type: "scatter", mode: "lines+markers", x, y: all.map((s) => s.acc), name: "accuracy",
      line: { color: t.ok, width: 2 }, marker: { size: 5 },
    });
  }
  const layout = {
    ...base(t), hovermode: "closest",
    xaxis: {
      title: { text: ax.title, standoff: 4, font: { size: 11, color: t.muted } }, type: ax.type, gridcolor: t.grid,
      autorange: !range, range: range ? range.map(ax.map) : undefined,
    },
    yaxis: { title: { text: "confidence", font: { size: 11, color: t.muted } }, range: [0, 1], gridcolor: t.grid, fixedrange: true },
  };
  return { data, layout };
}

export { stats, ece, histogramFigure, reliabilityFigure, evolutionFigure };
