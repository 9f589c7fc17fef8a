"""``divergence``: the training loss blows up far above its best, or swings without trend."""

from __future__ import annotations

import math
from collections.abc import Mapping

from fitscope.protocol import KEYS

from ..base import Context, Finding, Rule, fmt, step_str
from ..stats import theil_sen_slope

# fastai's LR finder stops when the smoothed loss exceeds 4x its best ("stop_div").
BLOWUP_FACTOR = 4.0
# a softer blow-up still worth a warning: loss held at 2x its best (literature §3.2 R2, R6).
RISE_FACTOR = 2.0
HOLD_STEPS = 10  # literature R2-soft: m = 10 consecutive steps
FAST_HOLD = 5  # the smoothed loss above 2x the best level for 5 steps in a row
# hysteresis (literature §3.1(3)): an open episode lasts until the level is back under 1.5x its
# best; a run that blew up and now sits at chance level (2x its best) has not recovered
CLEAR_FACTOR = 1.5
# R2-hard: smoothed loss > 10x max(initial loss, chance) at any time, warm-up included.
HARD_FACTOR = 10.0
# ... and at once, without waiting for 10 steps, beyond 100x (a blow-up that may be NaN next)
EXTREME_FACTOR = 100.0
# R2 guard: near-zero losses make 4x trivial; the loss must also be >= 25% of the initial one.
MIN_FRACTION_OF_INITIAL = 0.25
# R6 oscillation: over 100 steps in 10 blocks, no downward trend (total drop < 5%), the level
# at least 1.5x its best, and block means swinging far more than sampling noise explains: their
# variance over 8x the within-block variance / block size (about 1 for i.i.d. small-batch
# noise; 8 is above anything seen on our healthy small-batch runs).
OSC_WINDOW = 100
OSC_NOISE_RATIO = 8.0
OSC_MIN_DROP = 0.05
OSC_ABOVE_BEST = 1.5

REMEDY = (
    "The learning rate is too large: lower it (divide by 3-10), add or lengthen a warm-up, and "
    "clip gradients. If it was a single spike after long stable training, restart from the "
    "checkpoint before the spike and skip the offending batches."
)


def check(ctx: Context, p: Mapping[str, float]) -> Finding | None:
    t = ctx.state.train
    if t.init_n == 0 or not math.isfinite(t.s):
        return None
    init = ctx.init_loss
    chance = ctx.chance
    hard = p["hard_factor"] * max(init, chance if math.isfinite(chance) else 0.0)
    recent = t.ema.last(int(p["hold_steps"]))
    extreme = p["extreme_factor"] / p["hard_factor"] * hard
    if (len(recent) >= p["hold_steps"] and min(recent) > hard) or t.s > extreme:
        return _finding(ctx, "critical", t.s / max(t.best, 1e-12), hard_limit=hard)
    if ctx.warming_up or len(recent) < p["hold_steps"]:
        return None
    # compare loss levels (50-step means): small-batch noise barely moves them
    best = ctx.excess(t.best_level)
    level = t.level()
    now = ctx.excess(level)
    big_enough = now > p["min_fraction_of_initial"] * ctx.excess(init)
    if math.isfinite(best) and best > 0 and big_enough:
        ratio = now / best
        if ratio > p["blowup_factor"]:
            return _finding(ctx, "critical", ratio, level=level)
        if ratio > p["rise_factor"]:
            return _finding(ctx, "warning", ratio, level=level)
        # a sudden climb shows in the smoothed loss (~10 steps) long before the 50-step level:
        # every one of the last FAST_HOLD smoothed values above 2x the best level
        fast = [ctx.excess(x) for x in t.ema.last(int(p["fast_hold"]))]
        if (
            len(fast) == p["fast_hold"]
            and min(fast) > p["rise_factor"] * best
            and min(fast) > p["min_fraction_of_initial"] * ctx.excess(init)
        ):
            return _finding(ctx, "warning", min(fast) / best, fast=True)
    if "divergence" in ctx.open_rules and big_enough:
        # hysteresis: still above 1.5x the best level, or the best smoothed loss when the run
        # blew up before a level existed
        ref = min(x for x in (best, ctx.excess(t.best)) if math.isfinite(x) and x > 0)
        if now / ref > p["clear_factor"]:
            return _finding(ctx, "warning", now / ref, level=level)
    return _oscillation(ctx, p)


def _oscillation(ctx: Context, p: Mapping[str, float]) -> Finding | None:
    t = ctx.state.train
    window = int(p["osc_window"])
    raw = t.loss.since(max(t.baseline_step, ctx.step - window + 1))
    if len(raw) < window or not math.isfinite(sum(raw)):  # a NaN or Inf makes the sum one
        return None
    size = window // 10
    chunks = [raw[i * size : (i + 1) * size] for i in range(10)]
    blocks = [sum(c) / len(c) for c in chunks]
    mid = sum(blocks) / len(blocks)
    init = ctx.excess(ctx.init_loss)
    if not math.isfinite(mid) or ctx.excess(mid) <= p["min_fraction_of_initial"] * init:
        return None
    if not (mid > p["osc_above_best"] * t.best_level):
        return None
    within = sum(_var(c) for c in chunks) / len(chunks) / size
    ratio = _var(blocks) / within if within > 0 else math.inf
    drop = -theil_sen_slope(blocks) * len(blocks) / mid
    if ratio > p["osc_noise_ratio"] and drop < p["osc_min_drop"]:
        swing = (max(blocks) - min(blocks)) / mid
        return Finding(
            "warning",
            ctx.step - window + 1,
            f"Training loss swings by {swing:.0%} of its level over the last {window} steps "
            f"without a downward trend (mean {fmt(mid)}, best level {fmt(t.best_level)} at step "
            f"{step_str(t.best_level_step)}); the swings are {fmt(ratio, 2)}x larger than "
            "mini-batch noise explains.",
            "The learning rate is probably too high: lower it (divide by 3-10) or add a decay "
            "schedule, increase the batch size, or clip gradients.",
            {
                "series": [KEYS.TRAIN_LOSS],
                "start_step": ctx.step - window + 1,
                "end_step": ctx.step,
                "swing": swing,
                "noise_ratio": ratio,
                "mean": mid,
                "best": t.best_level,
                "kind": "oscillation",
            },
        )
    return None


def _var(xs: list[float]) -> float:
    m = sum(xs) / len(xs)
    return sum((x - m) ** 2 for x in xs) / len(xs)


def _finding(
    ctx: Context,
    severity: str,
    ratio: float,
    hard_limit: float | None = None,
    level: float | None = None,
    fast: bool = False,
) -> Finding:
    t = ctx.state.train
    onset = _onset(ctx)
    if fast:
        now, best, best_step = t.s, t.best_level, t.best_level_step
        limit = " (smoothed loss against the best 50-step mean)"
    elif level is None:
        now, best, best_step = t.s, t.best, t.best_step
        limit = f", beyond 10x the initial loss ({fmt(hard_limit or math.nan)})"
    else:
        now, best, best_step, limit = level, t.best_level, t.best_level_step, ""
        limit = " (means over 50 steps)"
    return Finding(
        severity,  # type: ignore[arg-type]
        onset,
        f"Training loss has risen to {fmt(now)}, {fmt(ratio, 2)}x its best value "
        f"{fmt(best)} (step {step_str(best_step)}){limit}; rising since step "
        f"{step_str(onset)}.",
        REMEDY,
        {
            "series": [KEYS.TRAIN_LOSS],
            "start_step": onset,
            "end_step": ctx.step,
            "best": best,
            "best_step": best_step,
            "now": now,
            "ratio": ratio,
        },
    )


def _onset(ctx: Context) -> int:
    """First step after the best where the smoothed loss exceeded 1.5x the best."""
    t = ctx.state.train
    limit = 1.5 * t.best
    for s, v in zip(t.ema.steps, t.ema.values, strict=True):
        if s > t.best_step and math.isfinite(v) and v > limit:
            return s
    return t.best_step


RULE = Rule(
    "divergence",
    "step",
    check,
    {
        "blowup_factor": BLOWUP_FACTOR,
        "rise_factor": RISE_FACTOR,
        "clear_factor": CLEAR_FACTOR,
        "hold_steps": HOLD_STEPS,
        "fast_hold": FAST_HOLD,
        "hard_factor": HARD_FACTOR,
        "extreme_factor": EXTREME_FACTOR,
        "min_fraction_of_initial": MIN_FRACTION_OF_INITIAL,
        "osc_window": OSC_WINDOW,
        "osc_noise_ratio": OSC_NOISE_RATIO,
        "osc_min_drop": OSC_MIN_DROP,
        "osc_above_best": OSC_ABOVE_BEST,
    },
    clear_after=100,
    during_warmup=True,
)
