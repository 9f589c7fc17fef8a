"""``vanishing_gradients``: almost no gradient reaches the first layers and the loss is stuck."""

from __future__ import annotations

import math
from collections.abc import Mapping

from fitscope.protocol import KEYS, PREFIXES

from ..base import Context, Finding, Rule, fmt, step_str
from ..stats import median, rel_change

# AutoTrainer (ICSE'21) beta1: first-layer / last-layer gradient norm < 1e-3.
RATIO = 1e-3
# DeepDiagnosis / SageMaker Debugger: mean |grad| < 1e-7 (here: RMS per entry of a hidden layer).
RMS = 1e-7
HOLD_STEPS = 20  # literature §3.2 R4: m = 20 consecutive steps
# ...and the loss is not improving (AutoTrainer's "not converging" gate): < 1% over 100 steps.
PROGRESS_STEPS = 100
MIN_PROGRESS = 0.01

REMEDY = (
    "Gradients vanish on their way to the first layers. Use ReLU/GELU instead of sigmoid/tanh, "
    "He (ReLU) or Xavier initialisation (orthogonal for RNNs), add BatchNorm or residual "
    "connections, or reduce the depth."
)


def check(ctx: Context, p: Mapping[str, float]) -> Finding | None:
    g = ctx.state.grads
    n = int(p["hold_steps"])
    ratios, rms = g.ratio.last(n), g.min_rms.last(n)
    by_ratio = len(ratios) == n and all(math.isfinite(r) and r < p["ratio"] for r in ratios)
    by_rms = len(rms) == n and all(math.isfinite(r) and r < p["rms"] for r in rms)
    if not (by_ratio or by_rms):
        return None
    t = ctx.state.train
    window = t.ema.since(max(t.baseline_step, ctx.step - int(p["progress_steps"])))
    if len(window) < p["progress_steps"] * 0.9:
        return None
    progress = rel_change(window[0], window[-1])
    if math.isfinite(progress) and progress >= p["min_progress"]:
        return None
    onset = g.ratio.steps[-n] if by_ratio else g.min_rms.steps[-n]
    what = (
        f"the first layer's gradient is {fmt(median(ratios))}x the last layer's"
        if by_ratio
        else f"a hidden layer's gradient entries are {fmt(median(rms))} (RMS)"
    )
    return Finding(
        "warning",
        onset,
        f"Gradients vanish: {what} for {n}+ steps since step {step_str(onset)}, and the "
        f"training loss improved only {max(progress, 0):.1%} over the last "
        f"{len(window)} steps.",
        REMEDY,
        {
            "series": [KEYS.GRAD_NORM_TOTAL, KEYS.TRAIN_LOSS]
            + [f"{PREFIXES.GRAD_NORM}{x}" for x in g.order[:1]],
            "start_step": onset,
            "end_step": ctx.step,
            "ratio": median(ratios) if ratios else None,
            "rms": median(rms) if rms else None,
            "progress": progress,
        },
    )


RULE = Rule(
    "vanishing_gradients",
    "step",
    check,
    {
        "ratio": RATIO,
        "rms": RMS,
        "hold_steps": HOLD_STEPS,
        "progress_steps": PROGRESS_STEPS,
        "min_progress": MIN_PROGRESS,
    },
    clear_after=50,
)
