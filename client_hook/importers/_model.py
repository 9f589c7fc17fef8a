"""What an importer reads a file into: one run's points, before they are sent."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..protocol import KEYS

# Names other tools give to the standard series, and the fitscope key each becomes.
# Matched case-insensitively; anything not listed keeps its own name.
ALIASES: dict[str, str] = {
    **dict.fromkeys(
        ["loss", "train_loss", "training_loss", "train_loss_step", "loss/train", KEYS.TRAIN_LOSS],
        KEYS.TRAIN_LOSS,
    ),
    **dict.fromkeys(
        [
            "val_loss",
            "valid_loss",
            "validation_loss",
            "eval_loss",
            "eval/loss",
            "loss/val",
            "loss/valid",
            "loss/validation",
            KEYS.VAL_LOSS,
        ],
        KEYS.VAL_LOSS,
    ),
    **dict.fromkeys(
        [
            "val_acc",
            "val_accuracy",
            "valid_acc",
            "valid_accuracy",
            "validation_accuracy",
            "eval_acc",
            "eval_accuracy",
            "eval/accuracy",
            "accuracy/val",
            "acc/val",
            "val/acc",
            KEYS.VAL_ACCURACY,
        ],
        KEYS.VAL_ACCURACY,
    ),
    **dict.fromkeys(["lr", "learning_rate", "train/learning_rate", "train/lr"], KEYS.LR_FIRST),
    **dict.fromkeys(["grad_norm", "gradient_norm", "train/grad_norm"], KEYS.GRAD_NORM_TOTAL),
}

# Throughput and clock columns: not training signals, left out of an import.
SKIPPED_SUFFIXES = (
    "_runtime",
    "_samples_per_second",
    "_steps_per_second",
    "total_flos",
    "timestamp",
    "wall_time",
    "walltime",
)


def standard_key(name: str) -> str:
    """The fitscope key for a series another tool named ``name``."""
    return ALIASES.get(name.strip().lower(), name.strip())


def is_noise(name: str) -> bool:
    low = name.strip().lower()
    return low in ("time", "_runtime") or low.endswith(SKIPPED_SUFFIXES)


@dataclass
class ImportedRun:
    """Scalars as ``{key: {step: value}}`` (a later value at the same step wins)."""

    name: str
    source: str
    format: str
    scalars: dict[str, dict[int, float]] = field(default_factory=dict)
    histograms: list[dict] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, key: str, step: int, value: float) -> None:
        self.scalars.setdefault(key, {})[step] = value

    @property
    def n_points(self) -> int:
        return sum(len(s) for s in self.scalars.values()) + len(self.histograms)

    def rename(self, mapping: dict[str, str], standard: bool = True) -> None:
        """Apply ``mapping`` (exact names) and then, with ``standard``, the usual aliases."""
        renamed: dict[str, dict[int, float]] = {}
        for key, points in self.scalars.items():
            new = mapping.get(key) or (standard_key(key) if standard else key)
            renamed.setdefault(new, {}).update(points)
        self.scalars = renamed
        for h in self.histograms:
            h["key"] = mapping.get(h["key"], h["key"])


class BadImport(ValueError):
    """A file that cannot be imported; the message says why."""


def display_name(path: Path) -> str:
    return path.stem if path.is_file() else path.resolve().name
