"""Values recorded on the training thread, handed to the sender in blocks.

Per step, hooks append 0-d tensors (losses, per-parameter norms) to one flat list and a
``Row`` (``_records``) describing them to another; nothing is read.  Every ``interval``
seconds the training thread closes a ``Block`` (no host-device sync; see ``_records``) and
queues it; the sender thread takes the queued blocks and decodes them (``_decode``).
Plain Python numbers (``run.log``, learning rates) skip the tensor path.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from ._console import say_once
from ._records import Block, Row, Vector
from .protocol import KEYS

MAX_PENDING = 20_000  # tensors held before a flush is forced, whatever the interval
MAX_BLOCKS = 600  # blocks waiting for the sender (10 minutes at 1 s): a hard memory cap


class Recorder:
    def __init__(
        self,
        interval: float = 1.0,
        max_pending: int = MAX_PENDING,
        max_blocks: int = MAX_BLOCKS,
    ) -> None:
        self.interval = interval
        self.max_pending = max_pending
        self.max_blocks = max_blocks
        self.layers: list[str] = []  # layer name per watched parameter index
        # appended to directly by the watcher's hooks (training thread)
        self.rows: list[Row] = []
        self.scalars: list[Any] = []
        self._vectors: list[Vector] = []
        self._hyper: list[tuple[int, list, list]] = []
        self._host: list[tuple[str, int, float]] = []
        self._lock = threading.Lock()
        self._blocks: deque[Block] = deque()
        self.next_flush = time.monotonic() + interval  # read by the watcher's step hook
        self.dropped_blocks = 0

    # -- training thread --------------------------------------------------------
    def hyper(self, step: int, lrs: list, wds: list) -> None:
        """Learning rates and weight decays of every group, from ``step`` on (only on change)."""
        self._hyper.append((step, lrs, wds))

    def vector(self, kind: str, key: str, step: int, tensor: Any, meta: Any = None) -> None:
        """A device tensor decoded by ``kind``: "scalar", "eval" or "labels"."""
        self._vectors.append((kind, key, step, tensor, meta))

    def scalar(self, key: str, step: int, value: float) -> None:
        self._host.append((key, step, value))

    def due(self) -> bool:
        return (
            time.monotonic() >= self.next_flush
            or len(self.scalars) + len(self._host) + len(self._vectors) >= self.max_pending
        )

    def pack(self) -> None:
        """Close the current block and hand it to the sender (no host-device sync)."""
        self.next_flush = time.monotonic() + self.interval
        if not (self.rows or self._vectors or self._host or self._hyper):
            return
        if self.rows:  # wall-clock time once per flush, at its last step (time/wall)
            self._host.append((KEYS.TIME_WALL, self.rows[-1][0], time.time()))
        block = Block(
            self.rows,
            self.scalars,
            self._vectors,
            self._hyper,
            self._host,
            self.layers,
        )
        self.rows, self.scalars = [], []
        self._vectors, self._hyper, self._host = [], [], []
        with self._lock:
            self._blocks.append(block)
            if len(self._blocks) > self.max_blocks:
                self._blocks.popleft()
                self.dropped_blocks += 1
                say_once(
                    f"blocks-dropped-{id(self)}",
                    "the sender thread is not keeping up; the oldest recorded values are "
                    "being dropped to bound memory (counted in run.recorder.dropped_blocks)",
                )

    # -- sender thread -----------------------------------------------------------
    def take(self) -> list[Block]:
        """The blocks closed so far, oldest first (sender thread)."""
        with self._lock:
            blocks = list(self._blocks)
            self._blocks.clear()
        return blocks
