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

Where the loop itself says which split it evaluates, in a local variable of the
function that runs the batches (``for split in ["train", "val"]: ... get_batch(split)``,
as nanoGPT's ``estimate_loss`` does), that name is used as if given to
``run.split``: ``split_in_caller`` reads it from the caller's frames (only on
evaluation batches, never in a training step).
"""

from __future__ import annotations

import re
import sys
from typing import Any

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


# local variable names that hold a split's name in common loops
_SPLIT_VARS = ("split", "split_name", "phase", "stage", "subset")
_OWN = ("fitscope", "torch", "lightning", "pytorch_lightning", "transformers", "accelerate")


def split_in_caller(max_user_frames: int = 3) -> str | None:
    """The split named by a local variable of the nearest user frames, as a key prefix.

    Frames of fitscope, torch and the training frameworks are skipped; a value counts only
    when it is a known split name (train, val, valid, validation, dev, eval, test...)."""
    try:
        f: Any = sys._getframe(2)
    except ValueError:
        return None
    seen = 0
    while f is not None and seen < max_user_frames:
        mod = f.f_globals.get("__name__", "")
        if not isinstance(mod, str) or not mod.startswith(_OWN):
            seen += 1
            local = f.f_locals
            for var in _SPLIT_VARS:
                v = local.get(var)
                if isinstance(v, str) and v.strip().lower() in _ALIASES:
                    return _ALIASES[v.strip().lower()]
        f = f.f_back
    return None


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
