// One scalar series as the page holds it: a server-side reduction of the whole run (at most
// `maxPoints` buckets, each with its exact min and max), the raw points that arrived live since,
// and optionally a more detailed reduction of the range the user zoomed into.
import { api, runPath, decode } from "./common.js";

export class Series {
  constructor(runId, key, maxPoints = 2000) {
    this.runId = runId;
    this.key = key;
    this.maxPoints = maxPoints;
    this.x = [];
    this.y = [];
    this.lo = []; // null where the point is a raw point (min = max = value)
    this.hi = [];
    this.total = 0;
    this.covered = -1; // the highest step the overview covers (a reduction's x are bucket starts)
    this.reduced = false;
    this.detail = null; // {x0, x1, x, y, lo, hi, reduced}
    this.loaded = false;
    this.version = 0; // bumped on every change, so charts redraw only when needed
    this._overviewAt = 0;
    this._detailToken = 0;
  }

  url(extra) {
    return runPath(this.runId, `/series?key=${encodeURIComponent(this.key)}&${extra}`);
  }

  static unpack(data) {
    const y = decode(data.values);
    const reduced = Boolean(data.reduced);
    return {
      x: data.steps,
      y,
      lo: reduced ? decode(data.min) : y.map(() => null),
      hi: reduced ? decode(data.max) : y.map(() => null),
      reduced,
      total: data.total,
      last: data.last_step ?? (data.steps.length ? data.steps[data.steps.length - 1] : -1),
    };
  }

  get lastStep() {
    return Math.max(this.covered, this.x.length ? this.x[this.x.length - 1] : -1);
  }

  async load() {
    this.takeOverview(Series.unpack(await api(this.url(`max_points=${this.maxPoints}`))));
  }

  // A fresh reduction of the whole run (an unpacked answer) replaces the overview; live points
  // past what it covers are kept.
  takeOverview(d) {
    const last = d.last;
    const keep = []; // live points that arrived while the reduction was on its way
    for (let i = 0; i < this.x.length; i++) if (this.x[i] > last) keep.push(i);
    const tail = keep.map((i) => [this.x[i], this.y[i]]);
    this.x = d.x;
    this.y = d.y;
    this.lo = d.lo;
    this.hi = d.hi;
    this.reduced = d.reduced;
    this.total = d.total;
    this.covered = d.last;
    this.loaded = true;
    this._overviewAt = Date.now();
    this.version++;
    if (tail.length) this.append(tail.map((p) => p[0]), tail.map((p) => p[1]));
  }

  // Raw points that arrived live (from the stream or a poll). Steps already held are skipped.
  append(steps, values) {
    const last = this.lastStep;
    let added = 0;
    for (let i = 0; i < steps.length; i++) {
      if (steps[i] <= last) continue;
      const v = typeof values[i] === "string" ? decode([values[i]])[0] : values[i];
      this.x.push(steps[i]);
      this.y.push(v);
      this.lo.push(null);
      this.hi.push(null);
      added++;
    }
    if (added) {
      this.total += added;
      this.version++;
      // a long live tail is folded back into a fresh reduction, so memory and drawing stay bounded
      if (this.x.length > 2 * this.maxPoints && Date.now() - this._overviewAt > 5000) {
        this.load().catch((err) => console.warn(err));
      }
    }
    return added;
  }

  async pollTail() {
    if (!this.loaded) {
      await this.load();
      return true;
    }
    const data = await api(this.url(`after=${this.lastStep}`));
    return this.append(data.steps, data.values) > 0;
  }

  // Whether zooming to [x0, x1] can show more than the overview already does.
  needsDetail(x0, x1) {
    if (!this.reduced) return false;
    const d = this.detail;
    return !(d && d.x0 <= x0 && d.x1 >= x1 && (!d.reduced || (d.x0 === x0 && d.x1 === x1)));
  }

  async loadDetail(x0, x1) {
    const token = ++this._detailToken;
    const a = Math.max(0, Math.floor(x0));
    const b = Math.max(a, Math.ceil(x1));
    const d = Series.unpack(await api(this.url(`max_points=${this.maxPoints}&start=${a}&end=${b}`)));
    if (token !== this._detailToken) return false; // a newer zoom superseded this one
    this.takeDetail(a, b, d);
    return true;
  }

  // A reduction of steps [x0, x1] (an unpacked answer), drawn in place of the overview there.
  takeDetail(x0, x1, d) {
    this.detail = { x0, x1, ...d };
    this.version++;
  }

  clearDetail() {
    if (this.detail) {
      this.detail = null;
      this._detailToken++;
      this.version++;
    }
  }

  // The points to draw: the overview, with the zoomed range replaced by its detail.
  view() {
    const d = this.detail;
    if (!d) return { x: this.x, y: this.y, lo: this.lo, hi: this.hi, reduced: this.reduced };
    const out = { x: [], y: [], lo: [], hi: [], reduced: this.reduced };
    const push = (src, i) => {
      out.x.push(src.x[i]);
      out.y.push(src.y[i]);
      out.lo.push(src.lo[i]);
      out.hi.push(src.hi[i]);
    };
    let i = 0;
    for (; i < this.x.length && this.x[i] < d.x0; i++) push(this, i);
    for (let j = 0; j < d.x.length; j++) push(d, j);
    while (i < this.x.length && this.x[i] <= d.x1) i++;
    for (; i < this.x.length; i++) push(this, i);
    return out;
  }

  // The last value, whatever it is (a NaN is news, not noise).
  lastValue() {
    return this.y.length ? this.y[this.y.length - 1] : undefined;
  }

  best(mode) {
    let b;
    for (const v of this.y) {
      if (!Number.isFinite(v)) continue;
      if (b === undefined || (mode === "max" ? v > b : v < b)) b = v;
    }
    return b;
  }
};

// Exponential moving average with TensorBoard's debiasing; non-finite points do not poison it
// (they stay visible as markers instead).
export const ema = (ys, weight) => {
  if (!(weight > 0)) return ys;
  const out = new Array(ys.length);
  let last = 0;
  let n = 0;
  for (let i = 0; i < ys.length; i++) {
    const v = ys[i];
    if (!Number.isFinite(v)) {
      out[i] = n ? last / (1 - Math.pow(weight, n)) : null;
      continue;
    }
    last = last * weight + (1 - weight) * v;
    n++;
    out[i] = last / (1 - Math.pow(weight, n));
  }
  return out;
};
