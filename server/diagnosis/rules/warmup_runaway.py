"""``warmup_runaway``: a learning-rate ramp that does not stop, or during which the loss worsens.

A warm-up keeps the other rules quiet while it lasts (a rising LR makes the loss noisy). That
guard has limits: once the LR has risen ``FAR`` x above its first value, or the loss has got
clearly worse during the ramp, the ramp is itself the finding and the guard is lifted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from fitscope.protocol import KEYS

from ..base import Context, Finding, Rule, Severity, fmt, step_str

# x100: a LinearLR(start_factor=0.01) warm-up ends exactly there; beyond it the ramp is a
# scheduler bug (a warm-up that never ends) or an unusually long warm-up from ~0 (info)
FAR = 100.0
# clearly worse: the smoothed loss 1.5x its lowest value since the ramp began, and by at least
# 10% of the chance-level loss (or 0.1 nats), over at least 10 steps of the ramp
WORSE = 1.5
MIN_WORSE = 0.1
MIN_RAMP = 10

REMEDY = (
    "Check the warm-up schedule: it should stop at the target learning rate (LinearLR's "
    "total_iters, a LambdaLR factor capped at 1, SequentialLR milestones) and hand over to the "
    "decay. If the loss got worse during the ramp, the target learning rate is too high: lower it."
)


def check(ctx: Context, p: Mapping[str, float]) -> Finding | None:
    lr = ctx.state.lr
    if not lr.warming_up() or not lr.ramp_since:
        return None
    top, start = lr.top(), lr.start
    if not (math.isfinite(top) and start > 0):
        return None
    factor = top / start
    far = factor >= p["far"] * 1.01
    t = ctx.state.train
    ema = [v for v in t.ema.since(lr.ramp_since) if math.isfinite(v)]
    worse = False
    low = math.nan
    if len(ema) >= p["min_ramp"]:
        low = min(ema)
        chance = ctx.chance
        margin = p["min_worse"] * chance if math.isfinite(chance) else p["min_worse"]
        worse = ema[-1] >= p["worse"] * low and ema[-1] - low >= margin
        worse = worse or t.nonfinite_streak > 0
    if not (far or worse):
        return None
    severity: Severity = "warning" if worse else "info"
    what = (
        f"The learning rate has been rising since step {step_str(lr.ramp_since)} and is now "
        f"{fmt(top)}, {fmt(factor, 2)}x its first value {fmt(start)}"
    )
    if worse:
        what += (
            f"; meanwhile the training loss got worse ({fmt(low)} -> {fmt(t.s)})"
            if math.isfinite(t.s)
            else "; meanwhile the training loss became non-finite"
        )
    return Finding(
        severity,
        lr.ramp_since,
        what + ".",
        REMEDY,
        {
            "series": [KEYS.LR_FIRST, KEYS.TRAIN_LOSS],
            "start_step": lr.ramp_since,
            "end_step": ctx.step,
            "lr": top,
            "lr_start": start,
            "factor": factor,
            "loss_low": low,
            "loss": t.s,
        },
    )


RULE = Rule(
    "warmup_runaway",
    "step",
    check,
    {"far": FAR, "worse": WORSE, "min_worse": MIN_WORSE, "min_ramp": MIN_RAMP},
    clear_after=20,
    during_warmup=True,
)
