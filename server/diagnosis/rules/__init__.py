"""The rules, in root-cause order: a rule earlier in ``RULES`` can explain a later one."""

from __future__ import annotations

from ..base import Rule
from . import (
    calibration,
    config_checks,
    dead_units,
    divergence,
    early_stop,
    exploding,
    grad_accumulating,
    grad_clipping,
    initial_loss,
    label_shift,
    lr_jump,
    lr_too_high,
    no_loss_captured,
    no_update,
    non_finite,
    not_learning,
    overfitting,
    plateau,
    underfitting,
    update_size,
    vanishing,
    warmup_runaway,
)

RULES: list[Rule] = [
    config_checks.ADAM,
    config_checks.BATCH,
    label_shift.RULE,
    lr_jump.RULE,
    warmup_runaway.RULE,
    lr_too_high.RULE,
    initial_loss.RULE,
    no_update.RULE,
    grad_accumulating.RULE,
    dead_units.RULE,
    exploding.RULE,
    vanishing.RULE,
    divergence.RULE,
    non_finite.RULE,
    grad_clipping.RULE,
    update_size.RULE,
    not_learning.RULE,
    overfitting.RULE,
    underfitting.RULE,
    calibration.OVER,
    calibration.UNDER,
    plateau.RULE,
    early_stop.RULE,
    no_loss_captured.RULE,
]
BY_ID: dict[str, Rule] = {r.id: r for r in RULES}

__all__ = ["BY_ID", "RULES"]
