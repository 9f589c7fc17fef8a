"""``non_finite``: NaN or Inf in the training loss, the validation loss or the gradients."""

from __future__ import annotations

import math
from collections.abc import Mapping

from fitscope.protocol import KEYS

from ..base import Context, Finding, Rule, fmt, step_str

# GradScaler skips a step on inf/NaN gradients on purpose; only a run of skips is a fault.
# Literature §3.2 R1: "with AMP fire only if >= 3 consecutive non-finite G".
AMP_SKIP_STREAK = 3
CLEAR_STEPS = 50  # finite values for this many steps end the episode

REMEDY = (
    "Usual causes: a learning rate that is too high, log or division of 0 (use CrossEntropyLoss "
    "on logits, add an epsilon), NaN/Inf in an input batch, unscaled inputs or targets. Lower "
    "the learning rate 10x, clip gradients (clip_grad_norm_(..., max_norm=1.0)) and check the "
    "batch at the first bad step for NaNs."
)


def check(ctx: Context, p: Mapping[str, float]) -> Finding | None:
    st = ctx.state
    t, g = st.train, st.grads
    last_loss = t.loss.values[-1] if len(t.loss) else 0.0
    val = st.evals.items[-1].loss if st.evals.items else 0.0
    loss_bad = not math.isfinite(last_loss) and t.last_step >= g.last_step - 1
    val_bad = not math.isfinite(val) and st.evals.last_step >= ctx.step - 1
    grad_streak = g.nonfinite_streak if g.last_step >= ctx.step - 1 else 0
    skipped = t.skipped_streak
    if ctx.facts.amp:
        grad_bad = grad_streak >= p["amp_skip_streak"] or skipped >= p["amp_skip_streak"]
    else:
        grad_bad = grad_streak >= 1
    if not (loss_bad or val_bad or grad_bad):
        return None
    where = []
    onsets = []
    if loss_bad:
        where.append("training loss")
        onsets.append(t.nonfinite_first)
    if grad_bad:
        where.append("gradient norm")
        onsets.append(g.nonfinite_first if grad_streak else ctx.step - skipped + 1)
    if val_bad:
        where.append("validation loss")
        onsets.append(st.evals.last_step)
    onset = min(onsets)
    before = (
        f"; the last finite training loss was {fmt(t.last_finite)}"
        if math.isfinite(t.last_finite)
        else ""
    )
    total = max(t.nonfinite_total, 1)
    return Finding(
        "critical",
        onset,
        f"{' and '.join(where).capitalize()} became NaN/Inf at step {step_str(onset)} "
        f"({total:,} non-finite training loss value{'s' if total != 1 else ''} so far{before}).",
        REMEDY,
        {
            "series": [KEYS.TRAIN_LOSS, KEYS.GRAD_NORM_TOTAL]
            + ([KEYS.VAL_LOSS] if val_bad else []),
            "start_step": onset,
            "end_step": ctx.step,
            "nonfinite_losses": t.nonfinite_total,
            "nonfinite_gradients": grad_streak,
            "amp": ctx.facts.amp,
        },
    )


RULE = Rule(
    "non_finite",
    "step",
    check,
    {"amp_skip_streak": AMP_SKIP_STREAK},
    clear_after=CLEAR_STEPS,
    during_warmup=True,
)
