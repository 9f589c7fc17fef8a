"""Turn a batch's columns into one record per step, in step order."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fitscope.protocol import KEYS, PREFIXES

# the scalar keys the diagnosis reads: a field of StepData each ...
_SCALAR_FIELDS = {
    KEYS.TRAIN_LOSS: "loss",
    KEYS.GRAD_NORM_TOTAL: "grad_total",
    KEYS.TRAIN_STEP_SKIPPED: "skipped",
    KEYS.UPDATE_RATIO_TOTAL: "update_total",  # ||dw|| / ||w|| (see fitscope._updates.due)
    KEYS.VAL_LOSS: "val_loss",
    KEYS.VAL_ACCURACY: "val_acc",
}
# ... and the per-layer / per-group families: an entry of a dict field each
_FAMILY_FIELDS = (
    (PREFIXES.GRAD_NORM, "grads"),
    (PREFIXES.LR, "lrs"),
    (PREFIXES.UPDATE_RATIO, "updates"),
    (PREFIXES.PARAM_NORM, "params"),
)


@dataclass
class StepData:
    step: int
    loss: float | None = None
    grad_total: float | None = None
    grads: dict[str, float] = field(default_factory=dict)
    lrs: dict[str, float] = field(default_factory=dict)
    skipped: float | None = None
    params: dict[str, float] = field(default_factory=dict)
    update_total: float | None = None
    updates: dict[str, float] = field(default_factory=dict)
    val_loss: float | None = None
    val_acc: float | None = None
    confidence: Mapping[str, Any] | None = None
    val_labels: list[float] | None = None
    train_labels: list[float] | None = None

    @property
    def has_train(self) -> bool:
        return self.loss is not None or self.grad_total is not None or bool(self.lrs)

    @property
    def has_eval(self) -> bool:
        return self.val_loss is not None or self.val_acc is not None or self.confidence is not None


def timeline(
    scalars: Mapping[str, tuple[list[int], list[float]]],
    histograms: Iterable[tuple[str, int, Mapping[str, Any]]],
) -> list[StepData]:
    """The batch's diagnosis inputs grouped by step; other keys are ignored."""
    steps: dict[int, StepData] = {}

    def at(step: int) -> StepData:
        d = steps.get(step)
        if d is None:
            d = steps[step] = StepData(step)
        return d

    for key, (ss, vs) in scalars.items():
        slot = _slot(key)
        if slot is None:
            continue
        name, member = slot
        for step, v in zip(ss, vs, strict=True):
            if member is None:
                setattr(at(step), name, v)
            else:
                getattr(at(step), name)[member] = v
    for key, step, data in histograms:
        counts = data.get("counts")
        if not isinstance(counts, list):
            continue
        if key == KEYS.VAL_CONFIDENCE:
            at(step).confidence = data
        elif key == KEYS.VAL_LABELS:
            at(step).val_labels = [float(c) for c in counts]
        elif key == KEYS.TRAIN_LABELS:
            at(step).train_labels = [float(c) for c in counts]
    return [steps[s] for s in sorted(steps)]


def _slot(key: str) -> tuple[str, str | None] | None:
    """Where the values of ``key`` go: ``(field, None)`` for a field of its own, ``(field,
    member)`` for an entry of a dict field (a layer, a parameter group); None: not read.
    Decided once per key of a batch, not once per point."""
    name = _SCALAR_FIELDS.get(key)
    if name is not None:
        return name, None
    if key == KEYS.PARAM_NORM_TOTAL:  # the whole model's norm: not a layer
        return None
    for prefix, field_name in _FAMILY_FIELDS:
        if key.startswith(prefix):
            return field_name, key[len(prefix) :]
    return None
