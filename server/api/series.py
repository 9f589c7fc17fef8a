"""Reading a run's series: keys, scalar series (reduced or full), histograms.

Series answers are serialized straight from numpy with orjson and carry a
``Server-Timing`` header (``db``, ``reduce``, ``encode``, in ms).
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Query
from fastapi.responses import Response

from fitscope.protocol import API_PREFIX

from ..decode import MAX_STEP
from ..jsonout import JSONOut, wire
from ..reduce import Units, reduce_points, reduce_units
from ..schemas import HistogramsOut, KeyOut, SeriesOut
from ..storage import histograms as hist_store
from ..storage import points, summaries
from ..storage.blocks import CHUNK_POINTS
from ..walltime import WallClock
from .deps import DbDep, RunId

router = APIRouter(prefix=f"{API_PREFIX}/runs", tags=["series"])

# reduce from summaries once a bucket spans this many units on average: buckets then hold
# whole units, so their sizes differ by up to a unit; below that the points are read and cut
# into exactly equal buckets
BLOCKS_PER_BUCKET = 4  # 2,048-point blocks
CHUNKS_PER_BUCKET = 2  # 64-point chunks


def _level(points_in_range: int, blocks_in_range: int, max_points: int) -> str | None:
    """The coarsest summary level that keeps buckets even, or None to read the points."""
    per_bucket = points_in_range / max_points
    per_block = points_in_range / max(blocks_in_range, 1)
    if per_bucket >= BLOCKS_PER_BUCKET * per_block:
        return "block"
    if per_bucket >= CHUNKS_PER_BUCKET * CHUNK_POINTS:
        return "chunk"
    return None


@router.get(
    "/{run_id}/keys", response_model=list[KeyOut], summary="The run's metric and histogram keys"
)
def list_keys(run_id: RunId, db: DbDep) -> list[KeyOut]:
    with db.session() as s:
        return [KeyOut(key=k, kind=kind, count=n) for k, kind, n in points.keys(s, run_id)]  # type: ignore[arg-type]


@router.get(
    "/{run_id}/series",
    response_model=SeriesOut,
    summary="One scalar series",
    description="Every point in step order, or with `max_points` a reduction to at most that many "
    "points that keeps each bucket's exact `min` and `max`, so no spike is hidden. "
    "`start`/`end` restrict to a step range (inclusive) at full detail; `after` returns only "
    "points after a step. `last_step` is the highest step in the range (also when reduced: "
    "the reduction's own steps are bucket starts), so `after=last_step` continues it. "
    "With `with_time=true`, `time` gives each step's Unix time in seconds (interpolated from "
    "the hook's `time/wall` series; null when the run has none).",
)
def get_series(
    run_id: RunId,
    db: DbDep,
    key: str = Query(min_length=1, max_length=250),
    max_points: int | None = Query(default=None, ge=2, le=1_000_000),
    start: int | None = Query(default=None, ge=0, le=MAX_STEP),
    end: int | None = Query(default=None, ge=0, le=MAX_STEP),
    after: int | None = Query(default=None, ge=-1, le=MAX_STEP),
    with_time: bool = Query(
        default=False,
        description="add `time`: the Unix time (s) of each step, interpolated from `time/wall`",
    ),
) -> Response:
    t0 = time.perf_counter()
    lo, hi = points.bounds(start, end, after)
    reduced: dict | None = None
    units: Units | None = None
    clock: WallClock | None = None
    with db.session() as s:
        if with_time:
            clock = WallClock.of_run(s, run_id)
        if max_points is None:
            steps, values = points.read_arrays(s, run_id, key, lo, hi)
        else:
            meta = summaries.meta(s, run_id, key, lo, hi)
            stored = meta.points
            level = _level(stored, len(meta.ids), max_points) if stored > max_points else None
            if level is not None:
                units = summaries.units(s, meta, lo, hi, level)
            else:
                steps, values = points.read_arrays(s, run_id, key, lo, hi)
    t1 = time.perf_counter()
    if max_points is not None and units is not None:
        total = int(units.n.sum())
        last_step = units.last_step
        reduced = reduce_units(units, max_points)
    else:
        total = len(steps)
        last_step = int(steps[-1]) if total else None
        if max_points is not None and total > max_points:
            reduced = reduce_points(steps, values, max_points)
    t2 = time.perf_counter()
    if reduced is not None:
        body: dict = {
            "key": key,
            "steps": reduced["steps"],
            "values": wire(reduced["values"]),
            "min": wire(reduced["min"]),
            "max": wire(reduced["max"]),
            "reduced": True,
            "total": total,
            "last_step": last_step,
        }
    else:
        body = {
            "key": key,
            "steps": steps,
            "values": wire(values),
            "min": None,
            "max": None,
            "reduced": False,
            "total": total,
            "last_step": last_step,
        }
    if with_time:
        body["time"] = None if clock is None else clock.at(body["steps"])
    resp = JSONOut(body)
    t3 = time.perf_counter()
    resp.headers["Server-Timing"] = (
        f"db;dur={(t1 - t0) * 1e3:.2f}, reduce;dur={(t2 - t1) * 1e3:.2f}, "
        f"encode;dur={(t3 - t2) * 1e3:.2f}"
    )
    return resp


@router.get(
    "/{run_id}/histograms",
    response_model=HistogramsOut,
    summary="The histograms of one key (e.g. val/confidence), in step order",
    description="`after`: only steps after it; `step`: only that step; `latest=true`: only the "
    "newest one.",
)
def get_histograms(
    run_id: RunId,
    db: DbDep,
    key: str = Query(min_length=1, max_length=250),
    after: int | None = Query(default=None, ge=-1, le=MAX_STEP),
    step: int | None = Query(default=None, ge=0, le=MAX_STEP),
    latest: bool = Query(default=False),
) -> Response:
    with db.session() as s:
        sid = points.series_id(s, run_id, key, "histogram")
        rows = [] if sid is None else hist_store.read(s, sid, after=after, step=step, latest=latest)
    return JSONOut({"key": key, "histograms": [{"step": st, **data} for st, data in rows]})
