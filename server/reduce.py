"""Server-side reduction of long series that never hides a spike.

A series of n points is cut into at most ``max_points`` buckets of consecutive
points; each bucket reports its first step, the mean of its finite values, and
the exact ``min`` and ``max`` of its values.  A one-step spike therefore
survives any reduction in ``max``.  A bucket holding a NaN reports NaN as its
value so the UI can mark it (NaN is data, not something to average away).

The reduction works on *units*: a unit is either one point or a whole stored
block summarized (count, min, max, sum and count of finite values, NaN count).
Summaries combine exactly, so a bucket made of whole blocks has the same
min/max/mean as one made of their points; long series reduce from block
summaries without reading their points.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Units:
    """Summaries of consecutive runs of points, one element per unit, in step order.

    ``lo``/``hi`` are the min/max of a unit's non-NaN values (+inf/-inf when it has none),
    ``total``/``nfinite`` the sum and count of its finite values, ``nnan`` its NaN count."""

    first_step: np.ndarray
    n: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    total: np.ndarray
    nfinite: np.ndarray
    nnan: np.ndarray
    last_step: int | None = field(default=None, init=False)  # the highest step covered

    def fields(
        self,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return (self.first_step, self.n, self.lo, self.hi, self.total, self.nfinite, self.nnan)


def point_units(steps: np.ndarray, values: np.ndarray) -> Units:
    """Each point as a unit."""
    nan = np.isnan(values)
    fin = np.isfinite(values)
    return Units(
        steps,
        np.ones(len(steps), dtype=np.int64),
        np.where(nan, np.inf, values),
        np.where(nan, -np.inf, values),
        np.where(fin, values, 0.0),
        fin.astype(np.int64),
        nan.astype(np.int64),
    )


def reduce_units(u: Units, max_points: int) -> dict[str, np.ndarray]:
    """Group consecutive units into at most ``max_points`` buckets of about equal point counts.

    A unit is never split, so a bucket holds at least one unit and there may be fewer
    buckets than asked."""
    if max_points <= 0:
        raise ValueError("max_points must be positive")
    first_step, n, lo, hi, total, nfinite, nnan = u.fields()
    count = int(n.sum())
    pos = np.cumsum(n) - n  # index of each unit's first point
    bucket = (pos * max_points) // max(count, 1)
    starts = np.flatnonzero(np.diff(bucket, prepend=-1))
    b_lo = np.minimum.reduceat(lo, starts)
    b_hi = np.maximum.reduceat(hi, starts)
    b_sum = np.add.reduceat(total, starts)
    b_fin = np.add.reduceat(nfinite, starts)
    b_nan = np.add.reduceat(nnan, starts)
    b_n = np.add.reduceat(n, starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = b_sum / b_fin
    # a bucket of only infinities takes their value; a bucket with a NaN shows NaN
    mean = np.where(b_fin == 0, np.where(np.isinf(b_hi) & (b_hi > 0), b_hi, b_lo), mean)
    mean = np.where(b_nan > 0, np.nan, mean)
    all_nan = b_nan == b_n
    return {
        "steps": first_step[starts],
        "values": mean,
        "min": np.where(all_nan, np.nan, b_lo),
        "max": np.where(all_nan, np.nan, b_hi),
    }


def reduce_points(steps: np.ndarray, values: np.ndarray, max_points: int) -> dict[str, np.ndarray]:
    """``reduce_units`` of single points (``len(steps) > max_points``): exactly ``max_points``
    buckets, point ``i`` in bucket ``i * max_points // n``.  All-finite series (the usual
    case) take a shortcut of three passes."""
    n = len(steps)
    if max_points <= 0:
        raise ValueError("max_points must be positive")
    b = np.arange(max_points, dtype=np.int64)
    starts = -((-b * n) // max_points)  # first i with i * max_points // n == b
    sizes = np.diff(np.append(starts, n))
    finite = np.isfinite(values)
    if finite.all():
        return {
            "steps": steps[starts],
            "values": np.add.reduceat(values, starts) / sizes,
            "min": np.minimum.reduceat(values, starts),
            "max": np.maximum.reduceat(values, starts),
        }
    nan = np.isnan(values)
    nans = np.add.reduceat(nan.astype(np.int64), starts)
    lo = np.minimum.reduceat(np.where(nan, np.inf, values), starts)
    hi = np.maximum.reduceat(np.where(nan, -np.inf, values), starts)
    fin = np.add.reduceat(finite.astype(np.int64), starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.add.reduceat(np.where(finite, values, 0.0), starts) / fin
    mean = np.where(fin == 0, np.where(np.isinf(hi) & (hi > 0), hi, lo), mean)
    mean = np.where(nans > 0, np.nan, mean)
    all_nan = nans == sizes
    return {
        "steps": steps[starts],
        "values": mean,
        "min": np.where(all_nan, np.nan, lo),
        "max": np.where(all_nan, np.nan, hi),
    }


def reduce_minmax(
    steps: list[int] | np.ndarray, values: list[float] | np.ndarray, max_points: int
) -> dict[str, list | None]:
    """Reduce points to ``max_points`` buckets (as lists); a short series is returned whole
    with ``min``/``max`` None."""
    s = np.asarray(steps, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    if max_points <= 0:
        raise ValueError("max_points must be positive")
    if len(s) <= max_points:
        return {"steps": s.tolist(), "values": v.tolist(), "min": None, "max": None}
    r = reduce_points(s, v, max_points)
    return {k: a.tolist() for k, a in r.items()}
