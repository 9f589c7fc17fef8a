"""``early_stop``: validation loss has not improved for many evaluations: time to stop."""

from __future__ import annotations

from collections.abc import Mapping

from fitscope.protocol import KEYS

from ..base import Context, Finding, Rule, fmt, step_str

# TRAINING_PRACTICES (002): patience 10-15 epochs; an evaluation stands in for an epoch.
PATIENCE = 10
# an improvement must beat the best by 0.1% (relative), so noise does not reset the patience
# (PyTorch ReduceLROnPlateau uses 1e-4 relative; a little more tolerance here)
MIN_DELTA = 1e-3

REMEDY = (
    "Stop training and restore the weights of the best evaluation (early stopping with "
    "patience). If you want to continue, decay the learning rate first."
)


def check(ctx: Context, p: Mapping[str, float]) -> Finding | None:
    ev = ctx.state.evals
    if ev.since_best < p["patience"] or not ev.items:
        return None
    cur = ev.items[-1]
    return Finding(
        "info",
        ev.best_step,
        f"Validation loss has not improved for {ev.since_best} evaluations: best "
        f"{fmt(ev.best_loss)} at step {step_str(ev.best_step)}, now {fmt(cur.loss)} at step "
        f"{step_str(cur.step)}.",
        REMEDY,
        {
            "series": [KEYS.VAL_LOSS],
            "start_step": ev.best_step,
            "end_step": cur.step,
            "best_val_loss": ev.best_loss,
            "best_step": ev.best_step,
            "val_loss": cur.loss,
            "evals_since_best": ev.since_best,
        },
    )


RULE = Rule("early_stop", "eval", check, {"patience": PATIENCE, "min_delta": MIN_DELTA}, 1)
