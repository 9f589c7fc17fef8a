"""Counting the training labels, for the ``train/labels`` histogram (label shift, class
imbalance, shuffled labels).

The hook keeps references to the training targets (one ``append`` per step on the fast path)
and counts them on the device in bunches (``_evalstats.fold_labels``: ``index_add_`` into a
fixed-size buffer, no host-device sync).  A bunch is at most ``TARGET_BATCHES`` batches or
``TARGET_ELEMENTS`` target elements, so memory stays bounded.  The counts since the last
histogram are handed to the recorder when a histogram is due: at the end of an evaluation
pass, every ``LABELS_EVERY`` steps, and at ``finish()``.

Counting starts once the first steps showed classification labels (``settle``); targets of a
kind this code does not understand stop it for good (``fold`` raises, the caller says so).
"""

from __future__ import annotations

from typing import Any

from . import _evalstats as ev

TARGET_ELEMENTS = 1 << 22  # training targets held before they are counted (bounds memory)
TARGET_BATCHES = 256  # ... and at most this many batches of them
LABELS_EVERY = 1000  # steps between train/labels histograms when no evaluation pass closes one


class LabelCounts:
    """The training labels seen since the last histogram."""

    def __init__(self) -> None:
        self.active = False  # the targets are classification labels worth counting
        self.targets: list[Any] = []  # held, not yet counted
        self.cap = 1  # batches held before they are counted
        self.task: str | None = None  # known once the first steps are seen (``settle``)
        self.classes = 0
        self.last_step = 0  # the step of the last histogram
        self._counts: Any = None  # device counts since the last histogram

    def add(self, target: Any) -> bool:
        """Hold one batch's targets; True when a bunch is full and should be counted."""
        targets = self.targets
        targets.append(target)
        if len(targets) == 1:  # batches are alike: size the budget from the first
            self.cap = max(1, min(TARGET_BATCHES, TARGET_ELEMENTS // max(1, target.numel())))
            return False
        return len(targets) >= self.cap

    def settle(self, task: str | None, classes: int) -> None:
        """What the first steps showed: count from now on, or never."""
        self.task, self.classes = task, classes
        self.active = task is not None
        if task is None:
            self.targets = []

    def fold(self, task: str | None = None, classes: int = 0) -> None:
        """Count the held targets (``task``/``classes`` while the first steps are still being
        looked at).  On targets it cannot count it stops counting and raises."""
        task = self.task or task
        classes = self.classes or classes
        if not self.targets or task is None:
            return
        targets, self.targets = self.targets, []
        try:
            self._counts = ev.fold_labels(self._counts, targets, task, classes)
        except Exception:
            self.task, self.active = None, False
            raise

    def due(self, step: int) -> bool:
        return step - self.last_step >= LABELS_EVERY

    def take(self, step: int) -> Any:
        """The counts since the last histogram (None: nothing counted); the next begins."""
        counts, self._counts = self._counts, None
        self.last_step = step
        return counts
