"""``exploding_gradients``: the gradient norm spikes far above its recent level, or keeps doubling."""

from __future__ import annotations

import math
from collections.abc import Mapping

from fitscope.protocol import KEYS

from ..base import Context, Finding, Rule, fmt, step_str
from ..stats import median

# literature §3.2 R3-spike: G_t > 10 x median(G over the previous 100 steps) for m = 3 steps.
SPIKE_FACTOR = 10.0
SPIKE_STEPS = 3
BASELINE_STEPS = 100
# an explosion in the first steps is judged against the run's own first steps: 3 norms are
# enough for a median that a 10x rise of 3 steps in a row stands far above
MIN_BASELINE = 3
SPIKE_HOLD = 5  # a one-step spike stays the finding for 5 steps (then the episode lingers)
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
    return _sustained(ctx, p) or _spike(ctx, p) or _trend(ctx, p)


def _sustained(ctx: Context, p: Mapping[str, float]) -> Finding | None:
    """The last ``spike_steps`` norms all above ``spike_factor`` x the level before them; the level
    is the median of up to 100 earlier norms, at least 3: early in a run, its own first steps."""
    g = ctx.state.grads.total
    onset = ctx.open_rules.get("exploding_gradients")
    k = int(p["spike_steps"])
    anchor = onset if onset is not None else (g.steps[-k] if len(g) >= k else g.steps[0])
    start = max(anchor - int(p["baseline_steps"]), ctx.state.train.baseline_step)
    before = g.between(start, anchor)
    base = median(before)
    last = g.last(k)
    if len(before) >= p["min_baseline"] and base > 0 and len(last) == k:
        finite_last = [v for v in last if math.isfinite(v)]
        if len(finite_last) == k and min(finite_last) > p["spike_factor"] * base:
            first = onset if onset is not None else g.steps[-k]
            peak = max(v for v in g.since(first) if math.isfinite(v))
            return _finding(ctx, first, base, peak, "sustained")
    return None


def _spike(ctx: Context, p: Mapping[str, float]) -> Finding | None:
    """A one-step jump (``Grads.jump``) in the last few steps: flagged at its own step, since the
    engine checks at once on a jump. An overflow to +inf after normal norms is one too."""
    gr = ctx.state.grads
    if not gr.spike_step or ctx.step - gr.spike_step >= p["spike_hold"]:
        return None
    return _finding(ctx, gr.spike_step, gr.spike_base, gr.spike_base * gr.spike_ratio, "spike")


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
    ratio = peak / base if base > 0 else math.inf
    if kind == "spike":
        what = (
            f"Gradient norm jumped to {fmt(peak)} at step {step_str(onset)}, {fmt(ratio, 2)}x its "
            f"level over the previous steps (median {fmt(base)})."
        )
    else:
        how = "rose" if kind == "sustained" else "grew steadily"
        what = (
            f"Gradient norm {how} from about {fmt(base)} to {fmt(peak)} ({fmt(ratio, 2)}x) "
            f"since step {step_str(onset)}."
        )
    return Finding(
        "warning",
        onset,
        what,
        REMEDY,
        {
            "series": [KEYS.GRAD_NORM_TOTAL, KEYS.TRAIN_LOSS],
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
        "spike_hold": SPIKE_HOLD,
        "trend_windows": TREND_WINDOWS,
        "trend_window_steps": TREND_WINDOW_STEPS,
        "trend_rate": TREND_RATE,
    },
    clear_after=50,
    during_warmup=True,
)
