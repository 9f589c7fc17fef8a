"""``exploding_gradients``: the gradient norm spikes far above its recent level, or keeps doubling."""

from __future__ import annotations

import math
from collections.abc import Mapping

from ..base import Context, Finding, Rule, fmt, step_str
from ..stats import median

# literature §3.2 R3-spike: G_t > 10 x median(G over the previous 100 steps) for m = 3 steps.
SPIKE_FACTOR = 10.0
SPIKE_STEPS = 3
BASELINE_STEPS = 100
MIN_BASELINE = 20  # values needed before the median means anything
# R3-trend (TheDeepChecker Gradient.Exploding: 4 consecutive ratios >= 2, window 5): the median
# over 4 successive 10-step windows doubles each time.
TREND_WINDOWS = 4
TREND_WINDOW_STEPS = 10
TREND_RATE = 2.0

REMEDY = (
    "The learning rate is too large, or a bad batch hit the model. Clip gradients "
    "(torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0), especially for RNN/LSTM), "
    "lower the learning rate, add normalisation layers, and check the data around that step."
)


def check(ctx: Context, p: Mapping[str, float]) -> Finding | None:
    g = ctx.state.grads.total
    if not len(g):
        return None
    onset = ctx.open_rules.get("exploding_gradients")
    k = int(p["spike_steps"])
    anchor = onset if onset is not None else (g.steps[-k] if len(g) >= k else g.steps[0])
    start = max(anchor - int(p["baseline_steps"]), ctx.state.train.baseline_step)
    base = median(g.between(start, anchor))
    n_base = len(g.between(start, anchor))
    last = g.last(k)
    if n_base >= p["min_baseline"] and base > 0 and len(last) == k:
        finite_last = [v for v in last if math.isfinite(v)]
        if len(finite_last) == k and min(finite_last) > p["spike_factor"] * base:
            peak = max(g.since(onset if onset is not None else g.steps[-k]))
            first = onset if onset is not None else g.steps[-k]
            return _finding(ctx, first, base, peak, "spike")
    return _trend(ctx, p)


def _trend(ctx: Context, p: Mapping[str, float]) -> Finding | None:
    g = ctx.state.grads.total
    w, n = int(p["trend_window_steps"]), int(p["trend_windows"])
    vals = g.since(ctx.state.train.baseline_step)
    if len(vals) < w * (n + 1):
        return None
    meds = [median(vals[len(vals) - (i + 1) * w : len(vals) - i * w]) for i in range(n + 1)][::-1]
    if not all(math.isfinite(m) and m > 0 for m in meds):
        return None
    if all(b >= p["trend_rate"] * a for a, b in zip(meds, meds[1:], strict=False)):
        t = ctx.state.train
        falling = t.ema.last(w * n)
        if len(falling) >= 2 and falling[-1] < 0.8 * falling[0]:
            return None  # a fast-falling loss explains growing gradients early on
        first = g.steps[-w * (n + 1)]
        return _finding(ctx, first, meds[0], meds[-1], "trend")
    return None


def _finding(ctx: Context, onset: int, base: float, peak: float, kind: str) -> Finding:
    ratio = peak / base
    how = "spiked" if kind == "spike" else "grew steadily"
    return Finding(
        "warning",
        onset,
        f"Gradient norm {how} from about {fmt(base)} to {fmt(peak)} ({fmt(ratio, 2)}x) "
        f"since step {step_str(onset)}.",
        REMEDY,
        {
            "series": ["grad_norm/total", "train/loss"],
            "start_step": onset,
            "end_step": ctx.step,
            "baseline": base,
            "peak": peak,
            "ratio": ratio,
            "kind": kind,
        },
    )


RULE = Rule(
    "exploding_gradients",
    "step",
    check,
    {
        "spike_factor": SPIKE_FACTOR,
        "spike_steps": SPIKE_STEPS,
        "baseline_steps": BASELINE_STEPS,
        "min_baseline": MIN_BASELINE,
        "trend_windows": TREND_WINDOWS,
        "trend_window_steps": TREND_WINDOW_STEPS,
        "trend_rate": TREND_RATE,
    },
    clear_after=50,
)
