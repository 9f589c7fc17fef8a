"""Points stored in compact blocks: the pure (SQL-free) half of point storage.

A scalar series is kept as blocks of consecutive points.  Each block holds its
steps and values as little-endian ``int64`` / ``float64`` byte strings (NaN and
±Inf stored as themselves; the steps as an empty string when they are every
step from first to last, the usual case), plus a summary: first and last step, point count,
min and max of the non-NaN values, sum and count of the finite values, count of
NaNs.  Within one series the blocks' step ranges never overlap, so reading a
series is concatenating its blocks in step order, and a reduced read of a long
series can use the summaries of whole blocks instead of their points.

Why blocks and not a row per point: one insert of 2,000 points costs about what
one row costs, which is what lets ingest run far above row-at-a-time SQLite
speed, and a 1,000,000-point series reads as ~500 rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BLOCK_POINTS = 2048  # points per stored block (a block is ~32 KiB)
MERGE_BELOW = 512  # chunks smaller than this are appended to the series' last block
CHUNK_POINTS = 64  # a block also keeps a summary per 64 of its points, for reduced reads

# one record per chunk of a block: its first step, point count, min/max of the non-NaN
# values (+inf/-inf when none), sum and count of the finite values, count of NaNs
CHUNK_DTYPE = np.dtype(
    [
        ("first", "<i8"),
        ("n", "<i4"),
        ("lo", "<f8"),
        ("hi", "<f8"),
        ("sum", "<f8"),
        ("nfinite", "<i4"),
        ("nnan", "<i4"),
    ]
)

_I8 = np.dtype("<i8")
_F8 = np.dtype("<f8")


@dataclass
class Block:
    """One block as stored; ``steps`` strictly increasing."""

    steps: np.ndarray
    values: np.ndarray

    @property
    def n(self) -> int:
        return len(self.steps)

    @property
    def first_step(self) -> int:
        return int(self.steps[0])

    @property
    def last_step(self) -> int:
        return int(self.steps[-1])

    def dense(self) -> bool:
        return self.last_step - self.first_step == self.n - 1

    def row(self) -> dict:
        """Column values of this block (without ``id``/``series_id``)."""
        v = self.values
        nan = np.isnan(v)
        finite = np.isfinite(v)
        n_nan = int(nan.sum())
        if n_nan == len(v):
            vmin = vmax = None
        else:
            ok = v[~nan] if n_nan else v
            vmin, vmax = float(ok.min()), float(ok.max())
        return {
            "first_step": self.first_step,
            "last_step": self.last_step,
            "n": self.n,
            "steps": b"" if self.dense() else self.steps.astype(_I8, copy=False).tobytes(),
            "vals": self.values.astype(_F8, copy=False).tobytes(),
            "vmin": vmin,
            "vmax": vmax,
            "vsum": float(v[finite].sum()),
            "nfinite": int(finite.sum()),
            "nnan": n_nan,
            "chunks": chunk_summary(self.steps, v, nan, finite).tobytes(),
        }


def chunk_summary(
    steps: np.ndarray, values: np.ndarray, nan: np.ndarray, finite: np.ndarray
) -> np.ndarray:
    """The per-chunk summary records of a block's points."""
    starts = np.arange(0, len(steps), CHUNK_POINTS)
    rec = np.empty(len(starts), dtype=CHUNK_DTYPE)
    rec["first"] = steps[starts]
    rec["n"] = np.diff(np.append(starts, len(steps)))
    rec["lo"] = np.minimum.reduceat(np.where(nan, np.inf, values), starts)
    rec["hi"] = np.maximum.reduceat(np.where(nan, -np.inf, values), starts)
    rec["sum"] = np.add.reduceat(np.where(finite, values, 0.0), starts)
    rec["nfinite"] = np.add.reduceat(finite.astype(np.int32), starts)
    rec["nnan"] = np.add.reduceat(nan.astype(np.int32), starts)
    return rec


def decode(first_step: int, steps: bytes, vals: bytes) -> Block:
    values = np.frombuffer(vals, dtype=_F8)
    if not steps:  # dense: every step from the first on
        return Block(np.arange(first_step, first_step + len(values), dtype=np.int64), values)
    return Block(np.frombuffer(steps, dtype=_I8), values)


def normalize(steps: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort by step and keep the last value written for a repeated step."""
    if len(steps) < 2 or bool(np.all(steps[1:] > steps[:-1])):
        return steps, values
    order = np.argsort(steps, kind="stable")
    s, v = steps[order], values[order]
    last = np.append(s[1:] != s[:-1], True)  # the last of each run of equal steps
    return s[last], v[last]


def merge(old: list[Block], steps: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points of ``old`` blocks overwritten by new (normalized) points where steps repeat."""
    if not old:
        return steps, values
    s = np.concatenate([*(b.steps for b in old), steps])
    v = np.concatenate([*(b.values for b in old), values])
    return normalize(s, v)


def split(steps: np.ndarray, values: np.ndarray, size: int = BLOCK_POINTS) -> list[Block]:
    """Cut sorted points into blocks of at most ``size`` points (evenly, no tiny tail)."""
    n = len(steps)
    if n == 0:
        return []
    parts = -(-n // size)
    bounds = [(i * n) // parts for i in range(parts + 1)]
    return [Block(steps[a:b], values[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)]


def concat(blocks: list[Block]) -> tuple[np.ndarray, np.ndarray]:
    if not blocks:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    if len(blocks) == 1:
        return blocks[0].steps, blocks[0].values
    return np.concatenate([b.steps for b in blocks]), np.concatenate([b.values for b in blocks])
