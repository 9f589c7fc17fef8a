"""Which split an evaluation pass belongs to, and so the prefix of its keys.

A pass is a run of evaluation batches (loss calls while the model is in eval
mode or gradients are off).  It ends at the next training step or training
loss, when ``model.eval()`` or ``model.train()`` is called, when the batches
change kind (another number of classes), or when the user names the next
split with ``run.split(name)``.

Prefixes:

* a named pass: ``run.split("test")`` -> ``test/``; ``"train"`` -> ``train_eval/``
  (``train/loss`` is the training loss itself); ``"val"``, ``"valid"``,
  ``"validation"`` -> ``val/``;
* an unnamed pass: ``val/`` for the first pass after a training step, then
  ``eval2/``, ``eval3/``... for further passes at the same step, so two passes
  are never averaged into one value and a second split is never stored as ``val/``;
* a name used twice at one step gets ``2``, ``3``... appended (``test2/``).
"""

from __future__ import annotations

import re

_ALIASES = {
    "train": "train_eval",
    "training": "train_eval",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "eval": "val",
    "test": "test",
    "testing": "test",
}


def split_prefix(name: str) -> str:
    """The key prefix of a split named by the user (lowercase, ``[a-z0-9_]``)."""
    low = re.sub(r"[^a-z0-9_]+", "_", str(name).strip().lower()).strip("_")[:40]
    return _ALIASES.get(low, low or "val")


class Passes:
    """The prefixes used at the current step and the name given for the next pass."""

    def __init__(self) -> None:
        self.name: str | None = None  # prefix named for the coming (or open) pass
        self._step = -1
        self._used: set[str] = set()
        self.last: str | None = None  # the prefix of the latest pass closed

    def name_next(self, name: str | None) -> None:
        self.name = split_prefix(name) if name is not None else None

    def prefix(self, step: int) -> str:
        """The prefix of a pass closing at ``step`` (the name is used up)."""
        if step != self._step:
            self._step, self._used = step, set()
        base, self.name = self.name, None
        if base is None:
            base, k = "val", 1
            while base in self._used:
                k += 1
                base = f"eval{k}"
        else:
            root, k = base, 1
            while base in self._used:
                k += 1
                base = f"{root}{k}"
        self._used.add(base)
        self.last = base
        return base
