"""Values recorded on the training thread, handed to the sender in blocks.

Per step, hooks append 0-d tensors (losses, per-parameter norms) to one flat
list and a small tuple describing them to another; nothing is read.  Every
``interval`` seconds the training thread closes a block:

* CUDA tensors are stacked into one tensor per device and copied once,
  asynchronously, into pinned host memory; a CUDA event marks the copy, and
  only the sender thread waits for it;
* CPU tensors need no copy at all: the sender thread stacks and reads them,
  so the training thread does no tensor work for them at flush time.

Plain Python numbers (``run.log``, learning rates) skip all of that.

A row (one step) is the tuple ``(step, kind, n_norms, present, n_losses,
n_pnorms, extras)``, its values in that order in the flat list:
``kind`` is "step", "skipped" (an AMP step skipped for inf/NaN gradients) or
"loss" (a forward pass counted as a step because the optimizer never steps);
``present`` lists the parameter indices of the norms (None: all of them);
``extras`` names the single values that follow: "grad_scale", "found_inf",
"amp_scale", or an int (the param group of a tensor learning rate).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from ._console import say_once
from ._decode import Decoder
from ._messages import Message

MAX_PENDING = 20_000  # tensors held before a flush is forced, whatever the interval
WALL_KEY = "time/wall"  # Unix seconds at the last step of each flush
MAX_BLOCKS = 600  # blocks waiting for the sender (10 minutes at 1 s): a hard memory cap

Row = tuple  # (step, kind, n_norms, present, n_losses, n_pnorms, extras)


class _Transfer:
    """Device tensors on their way to the host: one stack and one copy per device."""

    def __init__(self, scalars: list[Any], vectors: list[Any]) -> None:
        self.n_scalars = len(scalars)
        self.sizes = [t.numel() for t in vectors]
        self._scalars: list[Any] | None = None
        self._vectors: list[Any] | None = None
        self.parts: list[tuple[Any, Any, list[int]]] = []
        first = scalars[0] if scalars else vectors[0]
        if first.device.type == "cpu" and all(v.device.type == "cpu" for v in vectors):
            # nothing to copy: the sender thread stacks and reads them
            self._scalars, self._vectors = scalars, vectors
            return
        self._pack(scalars, vectors)

    def _pack(self, scalars: list[Any], vectors: list[Any]) -> None:
        import torch

        tensors = scalars + vectors
        n = self.n_scalars
        try:
            flat = torch.cat(
                [torch.stack(scalars).float(), *(v.reshape(-1).float() for v in vectors)]
                if scalars
                else [v.reshape(-1).float() for v in vectors]
            )
            self._add(flat, list(range(len(tensors))))
            return
        except RuntimeError:  # several devices (or an odd shape): group them
            pass
        by_device: dict[Any, list[int]] = {}
        for i, t in enumerate(tensors):
            by_device.setdefault(t.device, []).append(i)
        for idx in by_device.values():
            parts = [tensors[i].reshape(-1)[:1] if i < n else tensors[i].reshape(-1) for i in idx]
            self._add(torch.cat([p.float() for p in parts]), idx)

    def _add(self, flat: Any, order: list[int]) -> None:
        import torch

        event = None
        if flat.device.type == "cuda":
            pinned = torch.empty(flat.shape, dtype=flat.dtype, pin_memory=True)
            pinned.copy_(flat, non_blocking=True)
            event = torch.cuda.Event()
            event.record()
            flat = pinned
        self.parts.append((flat, event, order))

    def values(self) -> tuple[list[float], list[list[float]]]:
        """The scalars' values and each vector's values (sender thread; waits for the copy)."""
        if self._scalars is not None and self._vectors is not None:
            return self._read_cpu(self._scalars, self._vectors)
        sizes = [1] * self.n_scalars + self.sizes
        out: list[list[float]] = [[] for _ in sizes]
        for flat, event, order in self.parts:
            if event is not None:
                event.synchronize()
            vals = flat.tolist()
            pos = 0
            for i in order:
                out[i] = vals[pos : pos + sizes[i]]
                pos += sizes[i]
        return [v[0] for v in out[: self.n_scalars]], out[self.n_scalars :]

    @staticmethod
    def _read_cpu(scalars: list[Any], vectors: list[Any]) -> tuple[list[float], list[list[float]]]:
        import torch

        with torch.no_grad():
            try:
                vals = torch.stack(scalars).float().tolist() if scalars else []
            except RuntimeError:  # an odd shape
                vals = [float(t.reshape(-1)[0]) for t in scalars]
            return vals, [v.reshape(-1).float().tolist() for v in vectors]


class Block:
    """Everything recorded between two flushes."""

    def __init__(
        self,
        rows: list[Row],
        scalars: list[Any],
        vectors: list[tuple[str, str, int, Any, Any]],
        hyper: list[tuple[int, list, list]],
        host: list[tuple[str, int, float]],
        hists: list[dict],
        layers: list[str],
    ) -> None:
        self.rows = rows
        self.vectors = vectors
        self.hyper = hyper
        self.host = host
        self.hists = hists
        self.layers = layers
        vecs = [v[3] for v in vectors]
        self.transfer = _Transfer(scalars, vecs) if scalars or vecs else None


class Recorder:
    def __init__(
        self,
        run_id: str,
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
        self._vectors: list[tuple[str, str, int, Any, Any]] = []
        self._hyper: list[tuple[int, list, list]] = []
        self._host: list[tuple[str, int, float]] = []
        self._hists: list[dict] = []
        self._lock = threading.Lock()
        self._blocks: deque[Block] = deque()
        self.next_flush = time.monotonic() + interval  # read by the watcher's step hook
        self._decoder = Decoder(run_id)
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

    def histogram(self, hist: dict) -> None:
        self._hists.append(hist)

    def due(self) -> bool:
        return (
            time.monotonic() >= self.next_flush
            or len(self.scalars) + len(self._host) + len(self._vectors) >= self.max_pending
        )

    def pack(self) -> None:
        """Close the current block and hand it to the sender (no host-device sync)."""
        self.next_flush = time.monotonic() + self.interval
        if not (self.rows or self._vectors or self._host or self._hists or self._hyper):
            return
        if self.rows:  # wall-clock time once per flush, at its last step (time/wall)
            self._host.append((WALL_KEY, self.rows[-1][0], time.time()))
        block = Block(
            self.rows,
            self.scalars,
            self._vectors,
            self._hyper,
            self._host,
            self._hists,
            self.layers,
        )
        self.rows, self.scalars = [], []
        self._vectors, self._hyper, self._host, self._hists = [], [], [], []
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
    def drain(self) -> list[Message]:
        with self._lock:
            blocks = list(self._blocks)
            self._blocks.clear()
        return self._decoder.messages(blocks)
