"""``initial_loss``: the first step's loss is far above ln K, the loss of a uniform guess.

A freshly initialised classifier predicts roughly uniformly, so its first cross-entropy is close
to ln K (cs231n, "look for the correct loss at chance performance"; Karpathy's recipe, "verify
loss @ init"). Far above it: output weights initialised too large, logits scaled up, a wrong
class count or a loss that is not the mean cross-entropy. Far below is not flagged: a
fine-tuned model rightly starts below chance.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from fitscope.protocol import KEYS

from ..base import Context, Finding, Rule, fmt

# "far": above ln K by half of ln K and by at least 1 nat
ABOVE_FRACTION = 0.5
MIN_ABOVE = 1.0

REMEDY = (
    "Check the initialisation of the output layer (default or small weights, zero bias; "
    "initialise the bias to the log class priors for imbalanced data), that the logits are not "
    "scaled up, that the number of outputs equals the number of classes, and that the loss "
    "is a mean cross-entropy over the batch."
)


def check(ctx: Context, p: Mapping[str, float]) -> Finding | None:
    t = ctx.state.train
    k = ctx.classes
    if not k or t.init_n == 0 or t.first_step > 1 or not ctx.facts.hooked:
        return None
    first, ln_k = t.first, math.log(k)
    limit = ln_k + max(p["min_above"], p["above_fraction"] * ln_k)
    if not (math.isfinite(first) and first > limit):
        return None
    return Finding(
        "warning",
        t.first_step,
        f"The first training loss is {fmt(first)}, far above ln K = {fmt(ln_k)} (K = {k}) that "
        "a freshly initialised classifier should start near.",
        REMEDY,
        {
            "series": [KEYS.TRAIN_LOSS],
            "start_step": t.first_step,
            "end_step": t.first_step,
            "first_loss": first,
            "chance": ln_k,
        },
    )


RULE = Rule(
    "initial_loss",
    "step",
    check,
    {"above_fraction": ABOVE_FRACTION, "min_above": MIN_ABOVE},
    clear_after=10**9,  # a fact about the run's start: it stays
    during_warmup=True,
)
