"""Decoding and validating an ingest batch before anything is written.

A batch is validated whole: either every point in it is well-formed and it is
stored, or it is rejected with a message saying what is wrong and nothing is
stored.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field

import numpy as np
import orjson

from fitscope._wire import decode_float

KEY_RE = re.compile(r"^[^\x00-\x1f]{1,250}$")
BATCH_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
MAX_STEP = 2**62
MAX_HIST_BINS = 10_000


class BadBatch(ValueError):
    """The batch is malformed; the message says why (sent back with a 4xx)."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Histogram:
    key: str
    step: int
    data: dict


@dataclass
class Batch:
    """A validated batch: per key, steps (int64) and values (float64, NaN/±Inf as such)."""

    batch_id: str
    scalars: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    histograms: list[Histogram] = field(default_factory=list)

    @property
    def n_points(self) -> int:
        return sum(len(s) for s, _ in self.scalars.values()) + len(self.histograms)


def read_body(raw: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo ``Content-Encoding: gzip`` without letting a small body inflate past ``limit``."""
    enc = (encoding or "identity").strip().lower()
    if enc in ("identity", ""):
        return raw
    if enc != "gzip":
        raise BadBatch(f"unsupported Content-Encoding {enc!r}; use gzip or none", status=415)
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise BadBatch(f"body is not valid gzip: {exc}", status=400) from None
    if len(out) > limit or d.unconsumed_tail:
        raise BadBatch(f"decompressed body is larger than {limit} bytes", status=413)
    return out


def parse_json(body: bytes) -> object:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadBatch(f"body is not valid JSON: {exc}", status=400) from None


def _step(x: object, where: str) -> int:
    if isinstance(x, bool) or not isinstance(x, int):
        if isinstance(x, float) and x.is_integer():
            x = int(x)
        else:
            raise BadBatch(f"{where}: step must be an integer, got {str(x)[:30]!r}")
    if not 0 <= x <= MAX_STEP:
        raise BadBatch(f"{where}: step {x} is out of range 0..{MAX_STEP}")
    return x


def _key(k: object, where: str) -> str:
    if not isinstance(k, str) or not KEY_RE.match(k):
        raise BadBatch(f"{where}: key must be 1-250 printable characters, got {str(k)[:40]!r}")
    return k


def _floats(vals: object, where: str) -> list[float]:
    if not isinstance(vals, list):
        raise BadBatch(f"{where} must be a list")
    try:
        return [decode_float(v) for v in vals]
    except ValueError as exc:
        raise BadBatch(f"{where}: {exc}") from None


_NUMBERS = frozenset((int, float))


def _float_array(vals: object, where: str) -> np.ndarray:
    """Values as float64; the common all-numbers case without a Python loop per value."""
    if not isinstance(vals, list):
        raise BadBatch(f"{where} must be a list")
    if set(map(type, vals)) <= _NUMBERS:  # no bool, str, None, list...
        try:
            return np.array(vals, dtype=np.float64)
        except OverflowError:
            raise BadBatch(f"{where}: a number is too large for a float") from None
    return np.array(_floats(vals, where), dtype=np.float64)


def _step_array(steps: object, where: str) -> np.ndarray:
    if not isinstance(steps, list):
        raise BadBatch(f"{where}.steps must be a list")
    if set(map(type, steps)) <= {int}:
        try:
            arr = np.array(steps, dtype=np.int64)
        except OverflowError:
            arr = None
        if arr is not None and (len(arr) == 0 or (arr.min() >= 0 and arr.max() <= MAX_STEP)):
            return arr
    # the slow path finds and names the offending step
    return np.array([_step(s, where) for s in steps], dtype=np.int64)


def decode_batch(doc: object) -> Batch:
    if not isinstance(doc, dict):
        raise BadBatch("batch must be a JSON object")
    bid = doc.get("batch_id")
    if not isinstance(bid, str) or not BATCH_ID_RE.match(bid):
        raise BadBatch("batch_id must be 1-64 characters of letters, digits and _.:-")
    batch = Batch(bid)
    scalars = doc.get("scalars", {})
    if not isinstance(scalars, dict):
        raise BadBatch("scalars must be an object {key: {steps: [...], values: [...]}}")
    for k, series in scalars.items():
        key = _key(k, "scalars")
        if not isinstance(series, dict):
            raise BadBatch(f"scalars[{key!r}] must be an object with steps and values")
        steps = _step_array(series.get("steps"), f"scalars[{key!r}]")
        values = _float_array(series.get("values"), f"scalars[{key!r}].values")
        if len(steps) != len(values):
            raise BadBatch(f"scalars[{key!r}]: {len(steps)} steps but {len(values)} values")
        batch.scalars[key] = (steps, values)
    hists = doc.get("histograms", [])
    if not isinstance(hists, list):
        raise BadBatch("histograms must be a list")
    for i, h in enumerate(hists):
        batch.histograms.append(_histogram(h, f"histograms[{i}]"))
    return batch


def _histogram(h: object, where: str) -> Histogram:
    if not isinstance(h, dict):
        raise BadBatch(f"{where} must be an object")
    key = _key(h.get("key"), where)
    step = _step(h.get("step"), where)
    edges = _floats(h.get("edges"), f"{where}.edges")
    counts = _floats(h.get("counts"), f"{where}.counts")
    if not 1 <= len(counts) <= MAX_HIST_BINS or len(edges) != len(counts) + 1:
        raise BadBatch(f"{where}: needs 1..{MAX_HIST_BINS} counts and one more edge than counts")
    data: dict = {"edges": edges, "counts": counts}
    for extra in ("correct", "conf_sum"):
        if h.get(extra) is not None:
            vals = _floats(h[extra], f"{where}.{extra}")
            if len(vals) != len(counts):
                raise BadBatch(f"{where}.{extra} must have one value per bin")
            data[extra] = vals
    return Histogram(key, step, data)
