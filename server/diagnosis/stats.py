"""Small robust statistics over short windows (pure Python: windows hold a few hundred values)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def finite(values: Sequence[float]) -> list[float]:
    return [v for v in values if math.isfinite(v)]


def median(values: Sequence[float]) -> float:
    """Median of the finite values; NaN when there are none."""
    xs = sorted(finite(values))
    n = len(xs)
    if n == 0:
        return math.nan
    mid = n // 2
    return xs[mid] if n % 2 else 0.5 * (xs[mid - 1] + xs[mid])


def mean(values: Sequence[float]) -> float:
    xs = finite(values)
    return sum(xs) / len(xs) if xs else math.nan


def mad(values: Sequence[float]) -> float:
    """Median absolute deviation from the median."""
    m = median(values)
    return median([abs(v - m) for v in finite(values)])


def theil_sen_slope(ys: Sequence[float]) -> float:
    """Median of pairwise slopes of ``ys`` against their index (robust trend)."""
    pts = [(i, y) for i, y in enumerate(ys) if math.isfinite(y)]
    slopes = [
        (pts[j][1] - pts[i][1]) / (pts[j][0] - pts[i][0])
        for i in range(len(pts))
        for j in range(i + 1, len(pts))
    ]
    return median(slopes)


def rel_change(old: float, new: float) -> float:
    """(old - new) / |old|: the relative improvement of a loss going from ``old`` to ``new``."""
    if not (math.isfinite(old) and math.isfinite(new)) or old == 0:
        return math.nan
    return (old - new) / abs(old)


def smoothed_target_entropy(k: int, eps: float) -> float:
    """The lowest cross-entropy reachable with label smoothing ``eps`` over ``k`` classes."""
    if eps <= 0 or k < 2:
        return 0.0
    hi = 1.0 - eps + eps / k
    lo = eps / k
    return -(hi * math.log(hi)) - (k - 1) * lo * math.log(lo)


def entropy(counts: Sequence[float]) -> float:
    total = sum(c for c in counts if c > 0)
    if total <= 0:
        return math.nan
    return -sum((c / total) * math.log(c / total) for c in counts if c > 0)


def chi2_sf(x: float, dof: int) -> float:
    """Upper tail of the chi-square distribution (Wilson-Hilferty approximation)."""
    if dof <= 0 or x <= 0:
        return 1.0
    z = ((x / dof) ** (1 / 3) - (1 - 2 / (9 * dof))) / math.sqrt(2 / (9 * dof))
    return 0.5 * math.erfc(z / math.sqrt(2))
