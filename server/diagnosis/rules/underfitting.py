"""``underfitting``: training and validation loss both plateaued high, with no gap between them."""

from __future__ import annotations

import math
from collections.abc import Mapping

from fitscope.protocol import KEYS

from ..base import Context, Finding, Rule, Severity, fmt, pct
from ..stats import median, rel_change

# literature §3.2 R10: train plateau held for 2 windows (2 x 100 steps, < 2% improvement) ...
WINDOW = 200
WINDOW_EVALS = 5
MIN_IMPROVEMENT = 0.02
MIN_EVALS = 6
# ... no generalisation gap: validation loss within 15% of training loss (cs231n: "val tracking
# train closely => capacity too low") ...
MAX_GAP = 0.15
# ... and high error: the loss still covers >= 50% of the way from the floor to chance
# (warning), 30-50% (info: could be label noise or an irreducible error; set a target).
# Above chance level it is not underfitting but divergence or a bug.
HIGH = 0.5
MODERATE = 0.3
TARGET_ACCURACY = 0.0  # optional user target: below it (with the plateau) is a warning

REMEDY = (
    "Increase the model's capacity (width or depth), train longer, reduce regularisation "
    "(weight decay, dropout), or improve the input features."
)
# "a higher learning rate" only where the evidence points that way: updates that are tiny
# (||dw|| / ||w|| below 1e-4, healthy ~1e-3) and no sign of a learning rate that is too high
SMALL_UPDATE = 1e-4
HIGHER_LR = " The updates are tiny (median ||dw|| / ||w|| {ratio}): try a higher learning rate."


def check(ctx: Context, p: Mapping[str, float]) -> Finding | None:
    t, ev = ctx.state.train, ctx.state.evals
    chance = ctx.chance
    train = t.level()  # 50-step mean: the smoothed loss is too jumpy for a gap test
    if ev.count < p["min_evals"] or not math.isfinite(chance) or not math.isfinite(train):
        return None
    # the plateau window, counted in evaluations: back to the evaluation at least 200 steps
    # before this one, and at least WINDOW_EVALS evaluations back (a sparse, per-epoch history
    # is judged on its evaluations, whatever its step numbers)
    items = ev.items
    n = int(p["window_evals"])
    if len(items) < n + 1:
        return None
    i0 = len(items) - 1 - n
    while i0 > 0 and items[i0].step > ctx.step - p["window"]:
        i0 -= 1
    if items[i0].step < t.baseline_step:
        return None
    then = [e.train for e in items[max(0, i0 - 1) : i0 + 1]]
    now = [e.train for e in items[-2:]]
    gain = rel_change(sum(then) / len(then), sum(now) / len(now))
    if not math.isfinite(gain) or gain >= p["min_improvement"]:
        return None
    w = items[-1].step - items[i0].step
    cur = ev.items[-1]
    if not math.isfinite(cur.loss) or cur.loss > train * (1 + p["max_gap"]) + 0.01:
        return None
    span = chance - ctx.floor
    u = ctx.excess(train) / span if span > 0 else math.nan
    target = p["target_accuracy"]
    below_target = target > 0 and math.isfinite(cur.acc) and cur.acc < target
    if not math.isfinite(u) or u > 1 or (u < p["moderate"] and not below_target):
        return None
    severity: Severity = "warning" if u >= p["high"] or below_target else "info"
    acc = f", validation accuracy {pct(cur.acc)}" if math.isfinite(cur.acc) else ""
    onset = items[i0].step
    remedy = REMEDY
    upd = median(ctx.state.updates.total.last(5))
    rose = t.first > 0 and t.early_max > 2 * t.first
    if math.isfinite(upd) and upd < SMALL_UPDATE and not rose:
        remedy += HIGHER_LR.format(ratio=fmt(upd))
    return Finding(
        severity,
        onset,
        f"Training loss {fmt(train)} and validation loss {fmt(cur.loss)} have both stopped "
        f"improving ({max(gain, 0):.1%} over {len(items) - 1 - i0} evaluations, {w:,} steps) at {u:.0%} of the chance-level loss "
        f"{fmt(chance)}{acc}: the model underfits.",
        remedy,
        {
            "series": [KEYS.TRAIN_LOSS, KEYS.VAL_LOSS],
            "start_step": onset,
            "end_step": cur.step,
            "train_loss": train,
            "val_loss": cur.loss,
            "fraction_of_chance": u,
        },
    )


RULE = Rule(
    "underfitting",
    "eval",
    check,
    {
        "window": WINDOW,
        "window_evals": WINDOW_EVALS,
        "min_improvement": MIN_IMPROVEMENT,
        "min_evals": MIN_EVALS,
        "max_gap": MAX_GAP,
        "high": HIGH,
        "moderate": MODERATE,
        "target_accuracy": TARGET_ACCURACY,
    },
    clear_after=2,
)
