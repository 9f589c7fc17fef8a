"""``lr_too_high``: the learning rate is too high from the start, and the model has collapsed.

The root cause behind a family of symptoms (dead ReLUs, vanishing gradients, a loss stuck at
chance level, no progress): the loss rose or jumped within the first steps instead of falling
(or the updates are a large fraction of the weights: ||dw|| / ||w|| well above the ~1e-3 of
healthy training, SageMaker Debugger's weight-update-ratio rule), and the model now does no
better than chance (or than its first loss). The symptoms' alerts name this one as their cause.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from fitscope.protocol import KEYS

from ..base import Context, Finding, Rule, fmt, step_str
from ..stats import median

# the loss rose to 3x its first value within the first 10 steps (windows.EARLY_STEPS): training
# that works brings the loss down from its start (Google's tuning playbook: an initial increase
# is the sign of a learning rate that is too high), and by at least half a nat (not noise)
EARLY_RISE = 3.0
MIN_RISE = 0.5
# updates larger than 10% of the weights per step (median of the first 5 records, steps 1-5): two
# orders of magnitude above the healthy ~1e-3
LARGE_UPDATE = 0.1
UPDATE_RECORDS = 5
# collapsed: the smoothed loss is still >= 80% of chance level (or of the first loss without a
# class count) after 30 steps
COLLAPSED = 0.8
MIN_STEPS = 30

REMEDY = (
    "Lower the learning rate by 10x or more (run a short LR range test: the best LR is usually "
    "3-10x below the one where the loss starts to rise), add a warm-up, and clip gradients "
    "(clip_grad_norm_(..., max_norm=1.0)). Dead units, vanishing gradients and a loss stuck at "
    "chance level that follow are symptoms of this: fix the learning rate first."
)


def check(ctx: Context, p: Mapping[str, float]) -> Finding | None:
    st = ctx.state
    t = st.train
    if t.init_n == 0 or t.count < p["min_steps"]:
        return None
    first = t.first
    rose = (
        first > 0
        and t.early_max >= p["early_rise"] * first
        and t.early_max - first >= p["min_rise"]
    )
    # the first records (steps 1-5): too high *from the start*; large updates that begin later
    # (bad batches, an LR change) are other rules' findings (exploding_gradients, lr_jump, ...)
    upd = st.updates.early[: int(p["update_records"])]
    upd_med = median(upd) if len(upd) >= 3 else math.nan
    large = upd_med >= p["large_update"]
    if not (rose or large):
        return None
    chance = ctx.chance
    ref = chance if math.isfinite(chance) else first
    now = t.s
    collapsed = t.nonfinite_streak > 0 or not math.isfinite(now) or now >= p["collapsed"] * ref
    if not collapsed:
        return None
    lr = st.lr.top()
    lr_txt = f" ({fmt(lr)})" if math.isfinite(lr) else ""
    signs = []
    if rose:
        signs.append(
            f"the loss rose from {fmt(first)} to {fmt(t.early_max)} by step "
            f"{step_str(t.early_max_step)} instead of falling"
        )
    if large:
        signs.append(
            f"each update moves the weights by {fmt(upd_med)} of their norm (healthy: ~1e-3)"
        )
    state_txt = (
        "the loss is now non-finite"
        if t.nonfinite_streak or not math.isfinite(now)
        else f"the loss is still {fmt(now)}"
        + (f", at chance level (ln K = {fmt(chance)})" if math.isfinite(chance) else "")
    )
    onset = t.first_step
    return Finding(
        "critical",
        onset,
        f"The learning rate{lr_txt} is too high: " + "; ".join(signs) + f", and {state_txt}.",
        REMEDY,
        {
            "series": [KEYS.TRAIN_LOSS, KEYS.LR_FIRST, KEYS.UPDATE_RATIO_TOTAL],
            "start_step": onset,
            "end_step": ctx.step,
            "first_loss": first,
            "early_max": t.early_max,
            "loss": now,
            "update_ratio": upd_med,
            "lr": lr,
        },
    )


RULE = Rule(
    "lr_too_high",
    "step",
    check,
    {
        "early_rise": EARLY_RISE,
        "min_rise": MIN_RISE,
        "large_update": LARGE_UPDATE,
        "update_records": UPDATE_RECORDS,
        "collapsed": COLLAPSED,
        "min_steps": MIN_STEPS,
    },
    clear_after=100,
    during_warmup=True,
)
