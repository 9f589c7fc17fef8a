"""Decoding and validating an ingest batch before anything is written.

A batch is validated key by key: a series (or histogram) that is malformed, or
whose key is not acceptable, is *refused* and named in ``Batch.refused`` with the
reason; the rest of the batch is stored.  A batch that is malformed as a whole
(not JSON, not an object, no valid ``batch_id``, ``scalars`` not an object...) or
in which every series is refused is rejected with a 4xx saying why, and nothing
of it is stored.
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass, field

import numpy as np
import orjson

from fitscope.protocol import decode_float

KEY_RE = re.compile("^[^\x00-\x1f\x7f\ud800-\udfff]{1,250}$")
MAX_KEY = 250
ECHO_KEY = 1000  # a refused key longer than this is echoed shortened
BATCH_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
MAX_STEP = 2**62
MAX_HIST_BINS = 10_000


class BadBatch(ValueError):
    """The batch is malformed; the message says why (sent back with a 4xx)."""

    def __init__(self, message: str, status: int = 422, refused: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.refused = refused or {}


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
    refused: dict[str, str] = field(default_factory=dict)  # key -> why it was left out

    def refuse(self, key: object, reason: str) -> None:
        name = key if isinstance(key, str) else str(key)
        # a lone surrogate cannot be sent back in JSON: it is echoed as its escape
        name = name.encode("utf-8", "backslashreplace").decode("utf-8")
        if len(name) > ECHO_KEY:
            name = name[:ECHO_KEY] + "..."
        self.refused.setdefault(name, reason)

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
    parts: list[bytes] = []
    size, rest, member = 0, raw, 0
    while True:
        # every gzip member is decoded (RFC 1952: a file may hold several); anything else
        # after a member is refused rather than silently ignored
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out = d.decompress(rest, limit + 1 - size)
        except zlib.error as exc:
            where = "body" if member == 0 else f"data after gzip member {member}"
            raise BadBatch(f"{where} is not valid gzip: {exc}", status=400) from None
        size += len(out)
        if size > limit or d.unconsumed_tail:
            raise BadBatch(f"decompressed body is larger than {limit} bytes", status=413)
        if not d.eof:
            raise BadBatch("body is not valid gzip: it ends inside a gzip member", status=400)
        parts.append(out)
        member += 1
        rest = d.unused_data
        if not rest:
            return b"".join(parts)


def parse_json(body: bytes) -> object:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        first = exc
    # orjson refuses lone surrogates (\\udcff) anywhere; the standard parser keeps them, so
    # that such a key can be refused alone instead of the whole batch
    try:
        return json.loads(body, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise BadBatch(f"body is not valid JSON: {first}", status=400) from None


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def key_problem(k: object) -> str | None:
    """Why ``k`` cannot be a metric key, or None when it can."""
    if not isinstance(k, str):
        return "key must be a string"
    if KEY_RE.match(k):
        return None
    if not k:
        return "key is empty"
    if len(k) > MAX_KEY:
        return f"key is {len(k)} characters long; at most {MAX_KEY} are allowed"
    for i, ch in enumerate(k):
        if ch < " " or ch == "\x7f":
            return f"key contains the control character U+{ord(ch):04X} at position {i}"
        if "\ud800" <= ch <= "\udfff":
            return f"key contains a lone surrogate U+{ord(ch):04X} at position {i}"
    return "key must be 1-250 printable characters"


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
    why = key_problem(k)
    if why is not None:
        raise BadBatch(f"{where}: {why}, got {str(k)[:40]!r}")
    assert isinstance(k, str)
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
    """Validate a batch; malformed series are refused one by one (``Batch.refused``)."""
    if not isinstance(doc, dict):
        raise BadBatch("batch must be a JSON object")
    bid = doc.get("batch_id")
    if not isinstance(bid, str) or not BATCH_ID_RE.match(bid):
        raise BadBatch("batch_id must be 1-64 characters of letters, digits and _.:-")
    batch = Batch(bid)
    scalars = doc.get("scalars", {})
    if not isinstance(scalars, dict):
        raise BadBatch("scalars must be an object {key: {steps: [...], values: [...]}}")
    hists = doc.get("histograms", [])
    if not isinstance(hists, list):
        raise BadBatch("histograms must be a list")
    for k, series in scalars.items():
        try:
            batch.scalars[_key(k, "scalars")] = _series(k, series)
        except BadBatch as exc:
            batch.refuse(k, str(exc))
    for i, h in enumerate(hists):
        try:
            batch.histograms.append(_histogram(h, f"histograms[{i}]"))
        except BadBatch as exc:
            key = h.get("key") if isinstance(h, dict) and isinstance(h.get("key"), str) else None
            batch.refuse(key if key is not None else f"histograms[{i}]", str(exc))
    if batch.refused and not batch.scalars and not batch.histograms:
        raise everything_refused(batch.refused)
    return batch


def everything_refused(refused: dict[str, str]) -> BadBatch:
    """Nothing of a batch is acceptable: a 422 naming the first reasons (and all keys)."""
    reasons = "; ".join(list(refused.values())[:3])
    more = f" (and {len(refused) - 3} more)" if len(refused) > 3 else ""
    return BadBatch(f"nothing in the batch could be stored: {reasons}{more}", refused=refused)


def _series(key: str, series: object) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(series, dict):
        raise BadBatch(f"scalars[{key!r}] must be an object with steps and values")
    steps = _step_array(series.get("steps"), f"scalars[{key!r}]")
    values = _float_array(series.get("values"), f"scalars[{key!r}].values")
    if len(steps) != len(values):
        raise BadBatch(f"scalars[{key!r}]: {len(steps)} steps but {len(values)} values")
    return steps, values


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
