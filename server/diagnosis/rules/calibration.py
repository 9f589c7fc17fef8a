"""``overconfidence`` and ``underconfidence``: validation confidence far from validation accuracy.

Both read the ``val/confidence`` histogram (15 bins with per-bin correct counts and confidence
sums): mean confidence, accuracy, and the expected calibration error (ECE) of Guo et al. 2017.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from fitscope.protocol import KEYS

from ..base import Context, Finding, Rule, pct

# Guo et al. 2017: miscalibrated networks have ECE typically 4-10%; we flag above 5%.
ECE = 0.05
MIN_GAP = 0.05  # mean confidence - accuracy, at least 5 points (3 fired on a healthy LSTM)
# literature §3.2 R8a: the gap must pass a one-sided 1% binomial test: gap > 2.33 sqrt(A(1-A)/n)
Z = 2.33
HOLD_EVALS = 2
MIN_SAMPLES = 200  # R8: n_val >= 300 advised; 200 keeps small validation sets usable
ABOVE_CHANCE = 1.5  # accuracy >= 1.5 / K: at-chance models are the not_learning rule's case
# judge calibration once learning has slowed: not while the validation loss is still falling
# steadily (>= 70% of the last 4 changes are drops, and it fell > 2% over them)
SETTLED = 0.02
SETTLE_EVALS = 5
MIN_EVALS = 4
# TRAINING_PRACTICES (000): overconfidence is "many validation predictions with confidence 0.9+":
# at least 20% of predictions in the top bin (>= 14/15)
MIN_HIGH_SHARE = 0.2
# under-confidence: accuracy above confidence by 10 points (plus what label smoothing explains);
# small-batch SGD noise alone was seen to cost up to 8 points on a healthy run, a double softmax
# costs 50
UNDER_GAP = 0.10

OVER_REMEDY = (
    "The model is overconfident. Train with label smoothing (CrossEntropyLoss(label_smoothing=0.1)) "
    "or mixup, increase weight decay, stop at the best validation-loss checkpoint, or fit a "
    "temperature on held-out data after training (temperature scaling leaves accuracy unchanged)."
)
UNDER_REMEDY = (
    "The model is underconfident or confused. Check that softmax is not applied before "
    "CrossEntropyLoss (a double softmax caps confidence), that label smoothing / mixup is not "
    "stronger than intended, and that it has trained long enough."
)


def still_falling(losses: list[float], min_drop: float) -> bool:
    """The validation loss is still falling steadily: most successive evaluations improved and
    it fell by more than ``min_drop`` (relative) over them."""
    xs = [x for x in losses if math.isfinite(x) and x > 0]
    if len(xs) < 3:
        return True
    falls = sum(b < a for a, b in zip(xs, xs[1:], strict=False))
    return falls >= 0.7 * (len(xs) - 1) and (xs[0] - xs[-1]) / xs[0] > min_drop


def _eligible(ctx: Context, p: Mapping[str, float]) -> list:
    ev = ctx.state.evals
    items = ev.items[-int(p["hold_evals"]) :]
    if ev.count < p["min_evals"] or ctx.lr_ramp or len(items) < p["hold_evals"]:
        return []
    # wait until learning has slowed: early on, accuracy runs ahead of confidence
    if still_falling([e.loss for e in ev.items[-int(p["settle_evals"]) :]], p["settled"]):
        return []
    k = ctx.classes
    for e in items:
        if not (e.n >= p["min_samples"] and math.isfinite(e.conf) and math.isfinite(e.acc)):
            return []
        if k and e.acc < p["above_chance"] / k:
            return []
    return items


def check_over(ctx: Context, p: Mapping[str, float]) -> Finding | None:
    items = _eligible(ctx, p)
    if not items:
        return None
    for e in items:
        gap = e.conf - e.acc
        se = math.sqrt(max(e.acc * (1 - e.acc), 1e-4) / e.n)
        if not (e.ece > p["ece"] and gap > max(p["min_gap"], p["z"] * se)):
            return None
        if not e.high >= p["min_high_share"]:
            return None
    cur = items[-1]
    return Finding(
        "warning",
        items[0].step,
        f"On validation data the mean confidence is {pct(cur.conf)} but the accuracy is "
        f"{pct(cur.acc)} (ECE {pct(cur.ece)}; {pct(cur.high)} of predictions above 93% "
        f"confidence).",
        OVER_REMEDY,
        _evidence(items),
    )


def check_under(ctx: Context, p: Mapping[str, float]) -> Finding | None:
    items = _eligible(ctx, p)
    if not items:
        return None
    k = ctx.classes or 2
    smoothing = ctx.facts.label_smoothing * (1 - 1 / k)
    for e in items:
        gap = e.acc - e.conf
        se = math.sqrt(max(e.acc * (1 - e.acc), 1e-4) / e.n)
        if not (e.ece > p["ece"] and gap > max(p["under_gap"] + smoothing, p["z"] * se)):
            return None
    cur = items[-1]
    return Finding(
        "warning",
        items[0].step,
        f"On validation data the accuracy is {pct(cur.acc)} but the mean confidence only "
        f"{pct(cur.conf)} (ECE {pct(cur.ece)}).",
        UNDER_REMEDY,
        _evidence(items),
    )


def _evidence(items: list) -> dict:
    cur = items[-1]
    return {
        "series": [KEYS.VAL_CONFIDENCE, KEYS.VAL_ACCURACY],
        "start_step": items[0].step,
        "end_step": cur.step,
        "confidence": cur.conf,
        "accuracy": cur.acc,
        "ece": cur.ece,
        "samples": cur.n,
    }


PARAMS = {
    "ece": ECE,
    "min_gap": MIN_GAP,
    "z": Z,
    "hold_evals": HOLD_EVALS,
    "min_samples": MIN_SAMPLES,
    "above_chance": ABOVE_CHANCE,
    "under_gap": UNDER_GAP,
    "settled": SETTLED,
    "settle_evals": SETTLE_EVALS,
    "min_evals": MIN_EVALS,
    "min_high_share": MIN_HIGH_SHARE,
}
OVER = Rule("overconfidence", "eval", check_over, dict(PARAMS), clear_after=2)
UNDER = Rule("underconfidence", "eval", check_under, dict(PARAMS), clear_after=2)
