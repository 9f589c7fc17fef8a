"""Wall-clock time of any step, from the hook's ``time/wall`` series.

The hook records, once per flush, the Unix time (seconds, float64) at the
flush's last step. A step between two such records gets the linear
interpolation; a step before the first or after the last is extrapolated with
the nearest segment's rate (clamped to the record when there is only one).
"""

from __future__ import annotations

import numpy as np
from sqlalchemy.orm import Session

from fitscope.protocol import KEYS

from .storage import points


class WallClock:
    def __init__(self, steps: np.ndarray, times: np.ndarray) -> None:
        ok = np.isfinite(times)
        self.steps = steps[ok].astype(np.float64)
        self.times = times[ok]

    @classmethod
    def of_run(cls, s: Session, run_id: str) -> WallClock | None:
        steps, times = points.read_arrays(s, run_id, KEYS.TIME_WALL)
        clock = cls(steps, times)
        return clock if len(clock.steps) else None

    @property
    def last(self) -> float:
        return float(self.times[-1])

    def at(self, steps: np.ndarray | list) -> np.ndarray:
        """Unix seconds at each step (float64)."""
        x = np.asarray(steps, dtype=np.float64)
        xs, ts = self.steps, self.times
        out = np.interp(x, xs, ts)
        if len(xs) >= 2:
            lo = x < xs[0]
            if lo.any():
                rate = (ts[1] - ts[0]) / (xs[1] - xs[0])
                out[lo] = ts[0] + (x[lo] - xs[0]) * rate
            hi = x > xs[-1]
            if hi.any():
                rate = (ts[-1] - ts[-2]) / (xs[-1] - xs[-2])
                out[hi] = ts[-1] + (x[hi] - xs[-1]) * rate
        return out


def last_time(s: Session, run_id: str) -> float | None:
    """The training process's clock at its last recorded flush, or None."""
    _, times = points.read_tail(s, run_id, KEYS.TIME_WALL, 1)
    return float(times[-1]) if len(times) and np.isfinite(times[-1]) else None
