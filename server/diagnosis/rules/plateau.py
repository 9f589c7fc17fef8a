"""``plateau``: the training loss has stopped improving (late in training), far from converged."""

from __future__ import annotations

import math
from collections.abc import Mapping

from fitscope.protocol import KEYS

from ..base import Context, Finding, Rule, fmt, step_str
from ..stats import rel_change

# literature §3.2 R5b: window W = max(100 steps, 10% of the steps so far), improvement < 1%
MIN_WINDOW = 100
WINDOW_FRACTION = 0.1
MIN_IMPROVEMENT = 0.01
# R5b also asks for no validation improvement for P = 5 evaluations; with one evaluation per
# epoch that is 5 epochs of waiting, so here it only adds to the message (the alert is info)
VAL_PATIENCE = 5
# converged guard: the excess loss is below 5% of the initial one (nothing left to gain)
CONVERGED = 0.05

REMEDY = (
    "Decay the learning rate (e.g. torch.optim.lr_scheduler.ReduceLROnPlateau, or a step/"
    "cosine schedule). If accuracy is still far below what you need, try a higher learning "
    "rate, another optimizer, or more capacity."
)


def check(ctx: Context, p: Mapping[str, float]) -> Finding | None:
    t = ctx.state.train
    if t.init_n == 0 or not math.isfinite(t.s):
        return None
    span = ctx.step - t.baseline_step
    w = max(p["min_window"], p["window_fraction"] * ctx.step)
    if span < w or ctx.step < 2 * p["min_window"]:
        return None
    then = t.block_mean_near(int(ctx.step - w))
    now = t.block_mean_near(ctx.step)
    gain = rel_change(then, now)
    if not math.isfinite(gain) or gain >= p["min_improvement"]:
        return None
    if ctx.excess(now) < p["converged"] * ctx.excess(ctx.init_loss):
        return None
    ev = ctx.state.evals
    val = (
        f"; validation loss has not improved for {ev.since_best} evaluations"
        if ev.count and ev.since_best >= p["val_patience"]
        else ""
    )
    onset = int(ctx.step - w)
    return Finding(
        "info",
        onset,
        f"Training loss improved {max(gain, 0):.1%} over the last {int(w):,} steps "
        f"({fmt(then)} -> {fmt(now)}) and has plateaued since about step {step_str(onset)}"
        f"{val}.",
        REMEDY,
        {
            "series": [KEYS.TRAIN_LOSS, KEYS.LR_FIRST],
            "start_step": onset,
            "end_step": ctx.step,
            "improvement": gain,
            "loss": now,
        },
    )


RULE = Rule(
    "plateau",
    "step",
    check,
    {
        "min_window": MIN_WINDOW,
        "window_fraction": WINDOW_FRACTION,
        "min_improvement": MIN_IMPROVEMENT,
        "val_patience": VAL_PATIENCE,
        "converged": CONVERGED,
    },
    clear_after=50,
)
