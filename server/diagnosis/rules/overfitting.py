"""``overfitting``: validation loss climbs away from its best while training loss keeps falling."""

from __future__ import annotations

import math
from collections.abc import Mapping

from fitscope.protocol import KEYS

from ..base import Context, Finding, Rule, Severity, fmt, pct, step_str
from ..stats import mad

# Prechelt, "Early stopping - but when?": GL = E_va / E_opt - 1; GL5 as the warning level. Here
# E_va is the mean of the last 3 evaluations and E_opt the lowest such mean, so that one lucky
# low evaluation is not taken as the optimum (the minimum of noisy values is biased low).
GL_WARN = 0.05
GL_CRITICAL = 0.20  # literature §3.2 R7: critical when GL > 20
HOLD_EVALS = 2  # GL above the level for 2 consecutive evaluations (R7)
MIN_EVALS_PAST_BEST = 2  # the minimum must have held for 2 evaluations ([P] label-noise run)
MIN_EVALS = 5
# training still improving since the best (Prechelt's training progress P_k above 0)
MIN_TRAIN_DROP = 0.05
# statistical guard: the rise must exceed 2 x the evaluation-to-evaluation noise of the
# validation loss (robust SD of its successive differences / sqrt 2, over the last 20 evals)
Z_NOISE = 2.0
NOISE_EVALS = 20
# with accuracy unchanged, a rise below 5% of the chance-level loss (0.1 nats without a class
# count) is a handful of confident mistakes (NLL overfitting, Guo et al. §3), left to the
# calibration rules: "a tiny rise in a tiny validation loss with unchanged accuracy"
FLAT_ACC_MIN_RISE = 0.05
FLAT_ACC_MIN_RISE_NATS = 0.1
Z_ACC = 2.0  # an accuracy drop counts when larger than 2 standard errors

REMEDY = (
    "Use early stopping and restore the best checkpoint; add regularisation (weight decay, "
    "dropout, data augmentation), reduce the model size, or get more data."
)


def check(ctx: Context, p: Mapping[str, float]) -> Finding | None:
    ev = ctx.state.evals
    items = ev.items
    hold = int(p["hold_evals"])
    if ev.count < p["min_evals"] or ev.since_best < p["min_evals_past_best"]:
        return None
    best = ev.smooth_best
    if not math.isfinite(best) or best <= 0 or len(items) < hold:
        return None
    gls = [e.smooth / best - 1 for e in items[-hold:]]
    if not all(math.isfinite(x) and x > p["gl_warn"] for x in gls):
        return None
    cur = items[-1]
    rise = cur.smooth - best
    losses = [e.loss for e in items[-int(p["noise_evals"]) :]]
    diffs = [b - a for a, b in zip(losses, losses[1:], strict=False)]
    noise = 1.4826 * mad(diffs) / math.sqrt(2) if len(diffs) >= 3 else 0.0
    if rise <= p["z_noise"] * noise:
        return None
    then = ev.smooth_best_train
    train_drop = (then - cur.train) / then if then > 0 and math.isfinite(cur.train) else math.nan
    if not (math.isfinite(train_drop) and train_drop >= p["min_train_drop"]):
        return None
    acc_then, acc_now = _acc_around(items, ev.smooth_best_step), _mean_acc(items[-3:])
    if not _significant_drop(acc_then, acc_now, cur.n):
        k = ctx.classes
        floor = p["flat_acc_min_rise"] * math.log(k) if k else p["flat_acc_min_rise_nats"]
        if rise < floor:
            return None
    gl = gls[-1]
    severity: Severity = "critical" if gl > p["gl_critical"] else "warning"
    acc_txt = (
        f"; validation accuracy {pct(acc_then)} -> {pct(acc_now)}"
        if math.isfinite(acc_then) and math.isfinite(acc_now)
        else ""
    )
    return Finding(
        severity,
        ev.best_step,
        f"Validation loss {gl:.0%} above its best at step {step_str(cur.step)}: best "
        f"{fmt(ev.best_loss)} at step {step_str(ev.best_step)}, now {fmt(cur.loss)} (means of 3 "
        f"evaluations: {fmt(best)} -> {fmt(cur.smooth)}) while training loss fell "
        f"{train_drop:.0%}{acc_txt}.",
        REMEDY,
        {
            "series": [KEYS.VAL_LOSS, KEYS.TRAIN_LOSS, KEYS.VAL_ACCURACY],
            "start_step": ev.best_step,
            "end_step": cur.step,
            "best_val_loss": ev.best_loss,
            "best_step": ev.best_step,
            "val_loss": cur.loss,
            "best_val_loss_mean3": best,
            "val_loss_mean3": cur.smooth,
            "gl": gl,
            "train_drop": train_drop,
            "noise": noise,
        },
    )


def _mean_acc(items: list) -> float:
    accs = [e.acc for e in items if math.isfinite(e.acc)]
    return sum(accs) / len(accs) if accs else math.nan


def _acc_around(items: list, step: int) -> float:
    idx = next((i for i, e in enumerate(items) if e.step == step), None)
    return _mean_acc(items[max(0, idx - 2) : idx + 1]) if idx is not None else math.nan


def _significant_drop(then: float, now: float, n: float) -> bool:
    if not (math.isfinite(then) and math.isfinite(now)) or n <= 0:
        return False
    se = math.sqrt(max(then * (1 - then), 1e-4) / n)
    return then - now > Z_ACC * se


RULE = Rule(
    "overfitting",
    "eval",
    check,
    {
        "gl_warn": GL_WARN,
        "gl_critical": GL_CRITICAL,
        "hold_evals": HOLD_EVALS,
        "min_evals_past_best": MIN_EVALS_PAST_BEST,
        "min_evals": MIN_EVALS,
        "min_train_drop": MIN_TRAIN_DROP,
        "z_noise": Z_NOISE,
        "noise_evals": NOISE_EVALS,
        "flat_acc_min_rise": FLAT_ACC_MIN_RISE,
        "flat_acc_min_rise_nats": FLAT_ACC_MIN_RISE_NATS,
    },
    clear_after=2,
)
