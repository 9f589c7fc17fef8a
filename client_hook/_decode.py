"""Packed blocks -> batches of points (sender thread only).

The training thread recorded references and counts; here the values arrive as
floats and become the metric keys of the contract: ``train/loss``,
``grad_norm/*``, ``param_norm/*``, ``lr/*``, ``wd/*``, ``amp/scale``,
``train/step_skipped``, ``val/*`` and the label and confidence histograms.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from ._evalstats import CONF_BINS, unpack
from ._messages import Message
from ._records import Block, Row
from .protocol import KEYS, PREFIXES, SPLIT_VAL, batch_body, encode_float, paths, split_key

MAX_POINTS_PER_MESSAGE = 50_000
MAX_HISTOGRAMS_PER_MESSAGE = 500

Scalars = dict[str, tuple[list[int], list[float]]]


class Decoder:
    def __init__(self, run_id: str) -> None:
        self.path = paths.batches(run_id)
        self._lrs: list = []  # the learning rates and weight decays in force, across blocks
        self._wds: list = []

    def messages(self, blocks: list[Block]) -> list[Message]:
        scalars: Scalars = {}
        hists: list[dict] = []
        for block in blocks:
            vals: list[float] = []
            vecs: list[list[float]] = []
            if block.transfer is not None:
                vals, vecs = block.transfer.values()
            layers = _Layers(block.layers, scalars)
            pos = 0
            hyper = deque(block.hyper)
            for row in block.rows:
                while hyper and hyper[0][0] <= row[0]:
                    _, self._lrs, self._wds = hyper.popleft()
                pos = self._row(row, vals, pos, layers, scalars)
            while hyper:
                _, self._lrs, self._wds = hyper.popleft()
            for (kind, key, step, _, meta), v in zip(block.vectors, vecs, strict=True):
                if kind == "update":
                    _update_ratio(step, v, layers)
                else:
                    _vector(kind, key, step, v, meta, scalars, hists)
            for key, step, value in block.host:
                _add(scalars, key, step, value)
        return self._batches(scalars, hists)

    def _row(self, row: Row, vals: list[float], pos: int, layers: _Layers, out: Scalars) -> int:
        step, kind, n_norms, present, n_losses, n_pnorms, extras = row
        norms = vals[pos : pos + n_norms]
        pos += n_norms
        losses = vals[pos : pos + n_losses]
        pos += n_losses
        pnorms = vals[pos : pos + n_pnorms]
        pos += n_pnorms
        grad_scale = found_inf = None
        for name in extras:
            value = vals[pos]
            pos += 1
            if name == "grad_scale":
                grad_scale = value
            elif name == "found_inf":
                found_inf = value
            elif name == "amp_scale":
                _add(out, KEYS.AMP_SCALE, step, value)
            else:  # a tensor learning rate of group ``name``
                _add(out, f"{PREFIXES.LR}{name}", step, value)
        if losses:
            _add(out, KEYS.TRAIN_LOSS, step, math.fsum(losses) / len(losses))
        if norms:
            if grad_scale is not None and grad_scale > 0 and math.isfinite(grad_scale):
                norms = [x / grad_scale for x in norms]
            layers.add(PREFIXES.GRAD_NORM, step, norms, present)
        if pnorms:
            layers.add(PREFIXES.PARAM_NORM, step, pnorms, None)
        if kind == "skipped" or (found_inf is not None and found_inf != 0):
            _add(out, KEYS.TRAIN_STEP_SKIPPED, step, 1.0)
        if kind != "loss":
            for i, lr in enumerate(self._lrs):
                if lr is not None:
                    _add(out, f"{PREFIXES.LR}{i}", step, lr)
            for i, wd in enumerate(self._wds):
                if wd is not None:
                    _add(out, f"{PREFIXES.WD}{i}", step, wd)
        return pos

    def _batches(self, scalars: Scalars, hists: list[dict]) -> list[Message]:
        msgs: list[Message] = []
        batch: dict[str, dict] = {}
        size = 0
        for key, (steps, vals) in scalars.items():
            for i in range(0, len(steps), MAX_POINTS_PER_MESSAGE):
                if size >= MAX_POINTS_PER_MESSAGE:
                    msgs.append(self._batch(batch, []))
                    batch, size = {}, 0
                s = steps[i : i + MAX_POINTS_PER_MESSAGE]
                v = vals[i : i + MAX_POINTS_PER_MESSAGE]
                prev = batch.setdefault(key, {"steps": [], "values": []})
                prev["steps"].extend(s)
                prev["values"].extend(encode_float(x) for x in v)
                size += len(s)
        first = hists[:MAX_HISTOGRAMS_PER_MESSAGE]
        if batch or first:
            msgs.append(self._batch(batch, first))
        for i in range(MAX_HISTOGRAMS_PER_MESSAGE, len(hists), MAX_HISTOGRAMS_PER_MESSAGE):
            msgs.append(self._batch({}, hists[i : i + MAX_HISTOGRAMS_PER_MESSAGE]))
        return msgs

    def _batch(self, scalars: dict, hists: list[dict]) -> Message:
        m = Message("POST", self.path, {}, kind="points")
        m.payload = batch_body(m.id, scalars, hists)
        return m


def _add(scalars: Scalars, key: str, step: int, value: float) -> None:
    steps, vals = scalars.setdefault(key, ([], []))
    steps.append(step)
    vals.append(value)


class _Layers:
    """Per-parameter norms -> one norm per layer (root of the sum of squares), and the total."""

    def __init__(self, layers: list[str], out: Scalars) -> None:
        self.names_all = layers
        self.names = list(dict.fromkeys(layers))
        slot = {name: i for i, name in enumerate(self.names)}
        self.slot_of = [slot[name] for name in layers]
        self.out = out
        self._series: dict[str, list[Any]] = {}

    def _target(self, prefix: str, slot: int) -> tuple[list[int], list[float]]:
        targets = self._series.get(prefix)
        if targets is None:
            targets = self._series[prefix] = [None] * (len(self.names) + 1)
        got = targets[slot]
        if got is None:
            name = self.names[slot] if slot < len(self.names) else "total"
            got = targets[slot] = self.out.setdefault(prefix + name, ([], []))
        return got

    def add(self, prefix: str, step: int, norms: list[float], present: list[int] | None) -> None:
        sq = [0.0] * len(self.names)
        seen = [False] * len(self.names)
        index = present if present is not None else range(len(norms))
        slot_of = self.slot_of
        for pidx, norm in zip(index, norms, strict=False):
            if pidx < len(slot_of):
                s = slot_of[pidx]
                sq[s] += norm * norm
                seen[s] = True
        for s, value in enumerate(sq):
            if seen[s]:
                steps, vals = self._target(prefix, s)
                steps.append(step)
                vals.append(math.sqrt(value))
        steps, vals = self._target(prefix, len(self.names))
        steps.append(step)
        vals.append(math.sqrt(math.fsum(sq)))


def _update_ratio(step: int, v: list[float], layers: _Layers) -> None:
    """``[||dw_i||..., ||w_i||...]`` per parameter -> ``update_ratio/<module>`` and ``/total``."""
    n = len(v) // 2
    dw = _Layers(layers.names_all, {})
    dw.add("", step, v[:n], None)
    w = _Layers(layers.names_all, {})
    w.add("", step, v[n:], None)
    for name, (_, num) in dw.out.items():
        den = w.out.get(name, ([], [0.0]))[1][0]
        if den > 0 and math.isfinite(den):
            _add(layers.out, PREFIXES.UPDATE_RATIO + name, step, num[0] / den)


def _vector(
    kind: str, key: str, step: int, v: list[float], meta: Any, scalars: Scalars, hists: list[dict]
) -> None:
    if kind == "scalar":
        _add(scalars, key, step, v[0])
    elif kind == "labels":
        hists.append(_label_hist(key, step, v))
    elif kind == "eval":
        _eval(step, v, meta, scalars, hists)


def _label_hist(key: str, step: int, counts: list[float]) -> dict:
    return {
        "key": key,
        "step": step,
        "edges": list(range(len(counts) + 1)),
        "counts": [round(c) for c in counts],
    }


def _eval(step: int, v: list[float], meta: Any, scalars: Scalars, hists: list[dict]) -> None:
    e = unpack(v)
    if e.n <= 0:
        return
    split = str(meta.get("split") or SPLIT_VAL)
    _add(scalars, split_key(split, "loss"), step, e.loss_sum / e.n)
    if not meta.get("task"):
        return
    _add(scalars, split_key(split, "accuracy"), step, e.correct / e.n)
    b = CONF_BINS
    hists.append(
        {
            "key": split_key(split, "confidence"),
            "step": step,
            "edges": [i / b for i in range(b + 1)],
            "counts": [round(c) for c in e.counts],
            "correct": [round(c) for c in e.correct_bins],
            "conf_sum": [encode_float(c) for c in e.conf_sum],
        }
    )
    if e.labels:
        hists.append(_label_hist(split_key(split, "labels"), step, e.labels))
