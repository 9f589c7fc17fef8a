"""``not_learning``: the loss stays at chance level (or accuracy at chance) and is not moving."""

from __future__ import annotations

import math
from collections.abc import Mapping

from fitscope.protocol import KEYS

from ..base import Context, Finding, Rule, fmt, pct
from ..stats import rel_change

# literature §3.2 R5a: improvement < 1% over W >= 100 steps and S > 0.9 ln K (or A <= 1.5/K)
WINDOW = 100
MIN_IMPROVEMENT = 0.01
AT_CHANCE = 0.9  # smoothed loss >= 90% of the chance-level loss
ACC_CHANCE = 1.5  # accuracy <= 1.5 / K for ...
ACC_EVALS = 3  # ... 3 evaluations in a row
# ... unless the loss says otherwise: a loss below 70% of chance level is learning
CONTRADICT = 0.7
# without a class count: the loss has not moved 2% from its initial value in 200 steps
NO_K_STEPS = 200
NO_K_IMPROVEMENT = 0.02

REMEDY = (
    "The model is not learning anything. Check that optimizer.step() and zero_grad() are called, "
    "that the optimizer holds the model's parameters, that labels match inputs, that softmax is "
    "not applied before CrossEntropyLoss, and the learning rate (too low, or so high that it "
    "diverged). Try to overfit a single batch first."
)


def check(ctx: Context, p: Mapping[str, float]) -> Finding | None:
    t = ctx.state.train
    if t.init_n == 0 or not math.isfinite(t.s):
        return None
    w = int(p["window"])
    window = t.ema.since(max(t.baseline_step, ctx.step - w))
    chance = ctx.chance
    if math.isfinite(chance):
        if len(window) >= 0.9 * w:
            # first fifth against last fifth of the window: one noisy smoothed value at either
            # end must not pass for progress
            m = max(1, len(window) // 5)
            gain = rel_change(sum(window[:m]) / m, sum(window[-m:]) / m)
            if (
                math.isfinite(gain)
                and gain < p["min_improvement"]
                and min(window) >= p["at_chance"] * chance
                and not _val_contradicts(ctx, chance, p)
            ):
                return _finding(
                    ctx,
                    f"training loss has stayed at {fmt(t.s)} for {len(window)} steps, "
                    f"at chance level (ln K = {fmt(chance)})",
                    w,
                )
        k = ctx.classes or 0
        evs = ctx.state.evals.items[-int(p["acc_evals"]) :]
        acc_limit = p["acc_chance"] * _chance_accuracy(ctx)
        if (
            k
            and ctx.state.evals.count >= p["acc_evals"]
            and all(math.isfinite(e.acc) and e.acc <= acc_limit for e in evs)
            and ctx.state.evals.best_acc <= acc_limit
            and not _loss_contradicts(ctx, evs, chance, p)
        ):
            return _finding(
                ctx,
                f"validation accuracy has stayed at chance level ({pct(evs[-1].acc)} "
                f"with {k} classes) for {len(evs)} evaluations",
                w,
            )
        return None
    if ctx.step < p["no_k_steps"]:
        return None
    gain = rel_change(ctx.init_loss, t.s)
    if math.isfinite(gain) and gain < p["no_k_improvement"]:
        return _finding(
            ctx,
            f"training loss is still {fmt(t.s)} after {ctx.step:,} steps "
            f"(initially {fmt(ctx.init_loss)})",
            w,
        )
    return None


def _chance_accuracy(ctx: Context) -> float:
    """Accuracy of always predicting the most frequent class: 1/K for balanced classes, the
    majority share otherwise (e.g. the most frequent token of a language model)."""
    k = ctx.classes or 0
    prior = ctx.state.labels.train
    if len(prior) == k and sum(prior) >= 10 * k:
        return max(1.0 / k, max(prior) / sum(prior))
    return 1.0 / k if k else math.nan


def _loss_contradicts(ctx: Context, evs: list, chance: float, p: Mapping[str, float]) -> bool:
    """Accuracy at chance while the training or validation loss is far below chance level: the
    two signals disagree (e.g. classes read from the wrong axis), so neither is trusted alone."""
    limit = p["contradict"] * chance
    val = [e.loss for e in evs if math.isfinite(e.loss)]
    train = ctx.state.train.s
    return (bool(val) and max(val) < limit) or (math.isfinite(train) and train < limit)


def _val_contradicts(ctx: Context, chance: float, p: Mapping[str, float]) -> bool:
    """A training loss at chance level while the last evaluations show learning (validation
    loss far below chance, or accuracy well above it): not raised on the training loss alone."""
    evs = ctx.state.evals.items[-int(p["acc_evals"]) :]
    if not evs:
        return False
    k = ctx.classes or 0
    low = all(math.isfinite(e.loss) and e.loss < p["contradict"] * chance for e in evs)
    limit = p["acc_chance"] * _chance_accuracy(ctx) if k else math.nan
    acc = bool(k) and all(math.isfinite(e.acc) and e.acc > limit for e in evs)
    return low or acc


def _finding(ctx: Context, what: str, w: int) -> Finding:
    onset = max(1, ctx.step - w)
    return Finding(
        "critical",
        onset,
        f"Not learning: {what}.",
        REMEDY,
        {
            "series": [KEYS.TRAIN_LOSS, KEYS.VAL_ACCURACY],
            "start_step": onset,
            "end_step": ctx.step,
            "loss": ctx.state.train.s,
            "chance": ctx.chance,
        },
    )


RULE = Rule(
    "not_learning",
    "step",
    check,
    {
        "window": WINDOW,
        "min_improvement": MIN_IMPROVEMENT,
        "at_chance": AT_CHANCE,
        "acc_chance": ACC_CHANCE,
        "acc_evals": ACC_EVALS,
        "contradict": CONTRADICT,
        "no_k_steps": NO_K_STEPS,
        "no_k_improvement": NO_K_IMPROVEMENT,
    },
    clear_after=50,
)
