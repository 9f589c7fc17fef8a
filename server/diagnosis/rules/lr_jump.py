"""``lr_jump``: a learning rate jumps up far above anything used before (a schedule bug)."""

from __future__ import annotations

from collections.abc import Mapping

from fitscope.protocol import KEYS, PREFIXES

from ..base import Context, Finding, Rule, fmt, step_str

# literature §3.1(2): "an LR increase >= 10x is itself reported because it is a common schedule
# bug". Not a jump: a warm-up ramp (LR rose in the previous 10 steps), a restart to a level used
# before (new LR <= 2x the previous peak; SGDR), or a start from 0.
JUMP_FACTOR = 10.0
# the episode lasts while the LR stays above half the jumped-to value
STILL_HIGH = 0.5

REMEDY = (
    "Check the LR scheduler (a gamma above 1, a step counter reset, a scheduler stepped per "
    "batch instead of per epoch) and any code that sets param_group['lr']. Large LR increases "
    "need a warm-up."
)


def check(ctx: Context, p: Mapping[str, float]) -> Finding | None:
    lr = ctx.state.lr
    if not lr.jump_step:
        return None
    now = lr.last.get(lr.jump_group)
    if now is None or now < p["still_high"] * lr.jump_to:
        return None
    ratio = lr.jump_to / lr.jump_from
    return Finding(
        "warning",
        lr.jump_step,
        f"Learning rate of group {lr.jump_group} jumped {fmt(ratio, 2)}x at step "
        f"{step_str(lr.jump_step)}, from {fmt(lr.jump_from)} to {fmt(lr.jump_to)} "
        f"(its highest value before was {fmt(lr.jump_peak)}).",
        REMEDY,
        {
            "series": [f"{PREFIXES.LR}{lr.jump_group}", KEYS.TRAIN_LOSS, KEYS.GRAD_NORM_TOTAL],
            "start_step": lr.jump_step,
            "end_step": ctx.step,
            "from": lr.jump_from,
            "to": lr.jump_to,
            "ratio": ratio,
        },
    )


RULE = Rule(
    "lr_jump",
    "step",
    check,
    {"jump_factor": JUMP_FACTOR, "still_high": STILL_HIGH},
    clear_after=1,
    during_warmup=True,
)
