"""A run's diagnosis state: bounded windows of its series, kept between batches.

Everything here is plain data (numbers, lists, dicts of bounded size) that
round-trips through JSON, so the engine's state can be stored next to the run
in the same transaction as the points that changed it.  Updating it is
incremental: each new point costs O(1) amortised, never a re-scan of the run's
history.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import typing
from dataclasses import dataclass, field
from typing import Any

from fitscope.protocol import decode_float, encode_float

from .windows import LR, Evals, Grads, Labels, Params, Train, Updates


@dataclass
class Episode:
    """One alert episode of one rule: what the alert row shows, and when it last held."""

    rule: str
    alert_id: int | None = None
    status: str = "open"
    severity: str = "info"
    step: int = 0
    onset_step: int = 0
    message: str = ""
    remedy: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    last_hold_step: int = 0
    last_hold_eval: int = 0
    resolved_step: int = 0
    dirty: bool = True
    notified: bool = False
    notified_severity: str = ""  # the severity last announced (a webhook note on escalation)


@dataclass
class RunState:
    train: Train = field(default_factory=Train)
    grads: Grads = field(default_factory=Grads)
    lr: LR = field(default_factory=LR)
    params: Params = field(default_factory=Params)
    updates: Updates = field(default_factory=Updates)
    evals: Evals = field(default_factory=Evals)
    labels: Labels = field(default_factory=Labels)
    episodes: dict[str, Episode] = field(default_factory=dict)
    step: int = 0  # latest training step processed
    steps_seen: int = 0

    def to_json(self) -> Any:
        return _dump(self)

    @classmethod
    def from_json(cls, doc: Any) -> RunState:
        return _load(cls, doc)


def wire(obj: Any) -> Any:
    """A JSON-ready copy: dataclasses as dicts, non-finite floats as wire strings."""
    return _dump(obj)


def _dump(obj: Any) -> Any:
    if isinstance(obj, float):
        return encode_float(obj)
    if isinstance(obj, (int, str, bool)) or obj is None:
        return obj
    if isinstance(obj, list):
        if all(type(v) is float or type(v) is int for v in obj):
            return [v if v - v == 0 else encode_float(v) for v in obj]
        return [_dump(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _dump(v) for k, v in obj.items()}
    if dataclasses.is_dataclass(obj):
        return {f.name: _dump(getattr(obj, f.name)) for f in _fields(type(obj))}  # type: ignore[arg-type]
    return obj


@functools.cache
def _fields(tp: type) -> tuple[dataclasses.Field, ...]:
    return dataclasses.fields(tp)


@functools.cache
def _hints(tp: type) -> dict[str, Any]:
    return typing.get_type_hints(tp)


def _load(tp: Any, doc: Any) -> Any:
    if tp is float:
        if type(doc) in (float, int):
            return doc
        return decode_float(doc) if doc is not None else math.nan
    if tp is int or tp is str or tp is bool or tp is Any:
        return doc
    origin = typing.get_origin(tp)
    if origin is list:
        (arg,) = typing.get_args(tp)
        if arg is float:
            return [v if type(v) in (float, int) else decode_float(v) for v in doc]
        if arg is int:
            return list(doc)
        return [_load(arg, v) for v in doc]
    if origin is dict:
        _, arg = typing.get_args(tp)
        return {k: _load(arg, v) for k, v in doc.items()}
    if dataclasses.is_dataclass(tp) and isinstance(tp, type) and isinstance(doc, dict):
        hints = _hints(tp)
        return tp(
            **{f.name: _load(hints[f.name], doc[f.name]) for f in _fields(tp) if f.name in doc}
        )
    return doc
