"""What the training thread records per step, as the sender thread receives it.

A step is a ``Row``: its values lie, in the row's order, in the block's flat list of 0-d
tensors (``n_norms`` gradient norms, ``n_losses`` losses, ``n_pnorms`` parameter norms, then one
value per ``extras`` name). A ``Block`` is everything recorded between two flushes; its
``_Transfer`` moves the device tensors to the host without a sync on the training thread:

* CUDA tensors are stacked into one tensor per device and copied once, asynchronously, into
  pinned host memory; a CUDA event marks the copy, and only the sender thread waits for it;
* CPU tensors need no copy at all: the sender thread stacks and reads them, so the training
  thread does no tensor work for them at flush time.

The recorder (training thread) builds blocks; the decoder (sender thread) reads them; neither
imports the other.
"""

from __future__ import annotations

from typing import Any, Literal

RowKind = Literal["step", "skipped", "loss"]


# One step as recorded: ``(step, kind, n_norms, present, n_losses, n_pnorms, extras)``.
# - kind: "step"; "skipped" (an AMP step skipped for inf/NaN gradients); "loss" (a forward
#   pass counted as a step because the optimizer never steps);
# - n_norms: gradient norms, one per parameter in ``present`` (None: all parameters);
# - n_losses: training losses (micro-batches) of the step;
# - n_pnorms: parameter norms (every PARAM_NORM_EVERY steps), one per parameter;
# - extras: names of the single values that follow: "grad_scale", "found_inf", "amp_scale", or
#   an int (the param group of a tensor learning rate).
# A plain tuple, not a NamedTuple: the fast path builds one per step right after backward,
# where a NamedTuple's Python-level __new__ measured ~5 us more per step, cold.
Row = tuple[int, RowKind, int, list[int] | None, int, int, tuple[str | int, ...]]


# a device tensor for the decoder: (kind, key, step, tensor, meta); kind is "update",
# "eval", "labels" or "scalar"
Vector = tuple[str, str, int, Any, Any]


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
        vectors: list[Vector],
        hyper: list[tuple[int, list, list]],
        host: list[tuple[str, int, float]],
        layers: list[str],
    ) -> None:
        self.rows = rows
        self.vectors = vectors
        self.hyper = hyper
        self.host = host
        self.layers = layers
        vecs = [v[3] for v in vectors]
        self.transfer = _Transfer(scalars, vecs) if scalars or vecs else None
