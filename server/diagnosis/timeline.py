"""Turn a batch's columns into one record per step, in step order."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

LAYER_PREFIX = "grad_norm/"
PARAM_PREFIX = "param_norm/"
LR_PREFIX = "lr/"
UPDATE_PREFIX = (
    "update_ratio/"  # ||dw|| / ||w|| over one step (steps 1-10, every 10th to 100, then 50th)
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
        for step, v in zip(ss, vs, strict=True):
            if key == "train/loss":
                at(step).loss = v
            elif key == "grad_norm/total":
                at(step).grad_total = v
            elif key.startswith(LAYER_PREFIX):
                at(step).grads[key[len(LAYER_PREFIX) :]] = v
            elif key.startswith(LR_PREFIX):
                at(step).lrs[key[len(LR_PREFIX) :]] = v
            elif key == "train/step_skipped":
                at(step).skipped = v
            elif key == "update_ratio/total":
                at(step).update_total = v
            elif key.startswith(UPDATE_PREFIX):
                at(step).updates[key[len(UPDATE_PREFIX) :]] = v
            elif key.startswith(PARAM_PREFIX) and key != "param_norm/total":
                at(step).params[key[len(PARAM_PREFIX) :]] = v
            elif key == "val/loss":
                at(step).val_loss = v
            elif key == "val/accuracy":
                at(step).val_acc = v
    for key, step, data in histograms:
        counts = data.get("counts")
        if not isinstance(counts, list):
            continue
        if key == "val/confidence":
            at(step).confidence = data
        elif key == "val/labels":
            at(step).val_labels = [float(c) for c in counts]
        elif key == "train/labels":
            at(step).train_labels = [float(c) for c in counts]
    return [steps[s] for s in sorted(steps)]
