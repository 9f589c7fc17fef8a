"""``grad_accumulating``: gradients pile up across steps (``zero_grad()`` is missing).

Without ``zero_grad()`` the gradient at step t is the sum of all gradients so far, so its norm
grows steadily and changes only a little from one step to the next (one new term in a sum of
t), unlike the noisy norm of a fresh mini-batch gradient.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from fitscope.protocol import KEYS

from ..base import Context, Finding, Rule, fmt, step_str
from ..stats import median

WINDOW = 40  # steps examined
# share of steps where the norm rose; a fresh mini-batch gradient rises about half the time
MIN_RISING = 0.75
MIN_GROWTH = 2.0  # norm at least doubled over the window
# median relative step-to-step change; a sum of t terms moves by ~1/t per step
MAX_STEP_CHANGE = 0.1

REMEDY = (
    "Call optimizer.zero_grad() once per step (before loss.backward()). If you accumulate "
    "gradients on purpose, zero them after every optimizer.step() and divide the loss by the "
    "number of accumulated micro-batches."
)


def check(ctx: Context, p: Mapping[str, float]) -> Finding | None:
    g = ctx.state.grads.total
    w = int(p["window"])
    vals = g.last(w + 1)
    if len(vals) < w + 1 or not all(math.isfinite(v) and v > 0 for v in vals):
        return None
    pairs = list(zip(vals, vals[1:], strict=False))
    rising = sum(b > a for a, b in pairs) / len(pairs)
    growth = vals[-1] / vals[0]
    change = median([abs(b - a) / a for a, b in pairs])
    onset_open = ctx.open_rules.get("grad_accumulating")
    if onset_open is not None and change <= p["max_step_change"]:
        # once found, the fault stays while its signature lasts: a norm that moves only a little
        # from step to step, as a running sum does; a sum that stopped growing (the optimizer
        # settled into its drift) is still a sum, and zero_grad() is still missing
        return _finding(ctx, onset_open, vals, rising, growth, change, w)
    if rising >= p["min_rising"] and growth >= p["min_growth"] and change <= p["max_step_change"]:
        return _finding(ctx, g.steps[-w - 1], vals, rising, growth, change, w)
    return None


def _finding(
    ctx: Context, onset: int, vals: list, rising: float, growth: float, change: float, w: int
) -> Finding:
    return Finding(
        "warning",
        onset,
        f"Gradient norm rose at {rising:.0%} of the last {w} steps ({fmt(vals[0])} -> "
        f"{fmt(vals[-1])}, {fmt(growth, 2)}x), changing only {change:.1%} per step: gradients "
        f"seem to accumulate across steps since at least step {step_str(onset)}.",
        REMEDY,
        {
            "series": [KEYS.GRAD_NORM_TOTAL, KEYS.TRAIN_LOSS],
            "start_step": onset,
            "end_step": ctx.step,
            "rising": rising,
            "growth": growth,
            "step_change": change,
        },
    )


RULE = Rule(
    "grad_accumulating",
    "step",
    check,
    {
        "window": WINDOW,
        "min_rising": MIN_RISING,
        "min_growth": MIN_GROWTH,
        "max_step_change": MAX_STEP_CHANGE,
    },
    clear_after=50,
    during_warmup=True,
)
