"""Series and their points: ingest into blocks, and reads (full, ranged, summarized).

See ``blocks.py`` for the layout.  Writing a chunk of points to a series is one of:
append after the last block (small chunks merge into it, large ones become new
blocks), or, when the chunk reaches back into steps already stored, rewrite the
overlapping blocks merged with it (a step written again takes the new value).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import Table, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..models import PointBlockRow, SeriesRow
from . import blocks, blockwrite, histograms, runs, runs_table
from .blocks import Block
from .errors import SeriesKindConflict, StaleSeriesIds
from .upsert import insert_for

if TYPE_CHECKING:  # annotations only: storage raises its own errors, never the decoder's
    from ..decode import Batch

CHUNK = 500  # bound IN-lists and multi-row statements
CACHE_MAX = 200_000  # cached (run, key) -> series id entries per process

BLOCKS: Table = PointBlockRow.__table__  # type: ignore[assignment]


@dataclass
class Stored:
    """What one batch wrote: the live streams announce exactly this."""

    points: int = 0
    duplicate: bool = False
    ranges: dict[str, tuple[int, int]] = field(default_factory=dict)  # key -> first, last step
    histograms: list[tuple[str, int]] = field(default_factory=list)  # (key, step)


class SeriesCache:
    """(run, key) -> (series id, kind) of the series this process has written to, so that
    a batch of known keys needs no lookup.  Bounded: emptied when it grows past
    ``max_entries``.  The owner (``Database``) empties it when a transaction rolls back,
    since ids cached in it (new series) may not exist."""

    def __init__(self, max_entries: int = CACHE_MAX) -> None:
        self.max_entries = max_entries
        self._ids: dict[tuple[str, str], tuple[int, str]] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def known(self, run_id: str, kinds: dict[str, str]) -> dict[str, int]:
        """The cached ids of the keys in ``kinds`` (key -> kind) cached with that kind."""
        found: dict[str, int] = {}
        for k, kind in kinds.items():
            hit = self._ids.get((run_id, k))
            if hit is not None and hit[1] == kind:
                found[k] = hit[0]
        return found

    def put(self, run_id: str, key: str, sid: int, kind: str) -> None:
        if len(self._ids) >= self.max_entries:
            self._ids.clear()
        self._ids[(run_id, key)] = (sid, kind)

    def forget_run(self, run_id: str) -> None:
        """Drop a run's ids (it was deleted, or they proved stale)."""
        for k in [k for k in self._ids if k[0] == run_id]:
            self._ids.pop(k, None)

    def clear(self) -> None:
        self._ids.clear()


def series_ids(
    s: Session,
    run_id: str,
    kinds: dict[str, str],
    cache: SeriesCache,
    refused: dict[str, str],
) -> dict[str, int]:
    """Ids of the run's series named in ``kinds`` (key -> kind), created where missing.

    A key already used with the other kind (scalar vs histogram) is noted in ``refused``
    (key -> why) and left out."""
    found = cache.known(run_id, kinds)
    missing = [k for k in kinds if k not in found]
    if missing:
        _lookup(s, run_id, missing, kinds, found, cache, refused)
        absent = [k for k in missing if k not in found and k not in refused]
        if absent:
            stmt = insert_for(s.get_bind().dialect.name, SeriesRow.__table__)
            s.execute(
                stmt.on_conflict_do_nothing(index_elements=["run_id", "key"]),
                [{"run_id": run_id, "key": k, "kind": kinds[k]} for k in absent],
            )
            _lookup(s, run_id, absent, kinds, found, cache, refused)
    return found


def _lookup(
    s: Session,
    run_id: str,
    names: list[str],
    kinds: dict[str, str],
    found: dict[str, int],
    cache: SeriesCache,
    refused: dict[str, str],
) -> None:
    for i in range(0, len(names), CHUNK):
        part = names[i : i + CHUNK]
        q = select(SeriesRow.id, SeriesRow.key, SeriesRow.kind).where(
            SeriesRow.run_id == run_id, SeriesRow.key.in_(part)
        )
        for sid, key, kind in s.execute(q):
            if kind != kinds[key]:
                refused[key] = f"key {key!r} is a {kind} series, it cannot take {kinds[key]} data"
                continue
            found[key] = sid
            cache.put(run_id, key, sid, kind)


def ingest(s: Session, run_id: str, batch: Batch, cache: SeriesCache | None = None) -> Stored:
    """Store a batch once (by its ``batch_id``) and say what was written.

    ``SeriesKindConflict``: nothing of the batch is left to store.  ``StaleSeriesIds``: cached
    ids proved stale (forgotten now); the caller rolls back and may try again."""
    cache = SeriesCache() if cache is None else cache
    runs.touch(s, run_id)  # raises RunNotFound
    if not runs.claim_batch(s, run_id, batch.batch_id):
        return Stored(duplicate=True)
    kinds = {k: "scalar" for k in batch.scalars}
    for h in batch.histograms:
        kinds.setdefault(h.key, "histogram")
    reused = bool(cache.known(run_id, kinds))
    ids = series_ids(s, run_id, kinds, cache, batch.refused)
    if batch.refused:  # keys of the other kind: left out, the rest is stored
        batch.scalars = {k: v for k, v in batch.scalars.items() if k in ids}
        batch.histograms = [h for h in batch.histograms if h.key in ids]
        if not batch.scalars and not batch.histograms:  # rolls the claim back: a 422
            raise SeriesKindConflict(batch.refused)
    try:
        return _write(s, run_id, batch, ids)
    except _integrity_errors(s) as exc:
        if not reused:
            raise
        # a cached id of a run deleted (and made again) by another server process
        cache.forget_run(run_id)
        raise StaleSeriesIds(run_id) from exc


def _write(s: Session, run_id: str, batch: Batch, ids: dict[str, int]) -> Stored:
    out = Stored(points=batch.n_points)
    chunks: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for key, (steps, values) in batch.scalars.items():
        st, va = blocks.normalize(steps, values)
        if len(st):
            chunks[ids[key]] = (st, va)
            out.ranges[key] = (int(st[0]), int(st[-1]))
    if chunks:
        blockwrite.write(s, chunks)
        runs_table.note_steps(s, run_id, out.ranges)
    if batch.histograms:
        out.histograms = histograms.store(s, ids, batch.histograms)
    return out


def _integrity_errors(s: Session) -> tuple[type[BaseException], ...]:
    """SQLAlchemy's integrity error and the driver's own (the block writer runs statements
    on the raw DBAPI connection)."""
    raw = getattr(s.get_bind().dialect.dbapi, "IntegrityError", None)
    return (IntegrityError, raw) if isinstance(raw, type) else (IntegrityError,)


def load(s: Session, *where: object) -> list[Block]:
    c = BLOCKS.c
    q = select(c.first_step, c.steps, c.vals).where(*where).order_by(c.first_step)  # type: ignore[arg-type]
    return [blocks.decode(f, st, va) for f, st, va in s.execute(q)]


def keys(s: Session, run_id: str) -> list[tuple[str, str, int]]:
    """(key, kind, count) of every series of a run."""
    runs.get_run(s, run_id)
    q = text(
        "SELECT s.key, s.kind, "
        "CASE WHEN s.kind = 'scalar' "
        "THEN (SELECT COALESCE(SUM(b.n), 0) FROM point_blocks b WHERE b.series_id = s.id) "
        "ELSE (SELECT COUNT(*) FROM histograms h WHERE h.series_id = s.id) END "
        "FROM series s WHERE s.run_id = :run ORDER BY s.key"
    )
    return [(k, kind, int(n)) for k, kind, n in s.execute(q, {"run": run_id})]


def series_id(s: Session, run_id: str, key: str, kind: str = "scalar") -> int | None:
    """The id of a run's series, None when the run has no such series (RunNotFound: no run)."""
    runs.get_run(s, run_id)
    return s.scalar(
        select(SeriesRow.id).where(
            SeriesRow.run_id == run_id, SeriesRow.key == key, SeriesRow.kind == kind
        )
    )


def in_range(sid: int, lo: int | None, hi: int | None) -> list:
    where = [BLOCKS.c.series_id == sid]
    if lo is not None:
        where.append(BLOCKS.c.last_step >= lo)
    if hi is not None:
        where.append(BLOCKS.c.first_step <= hi)
    return where


def clip(
    steps: np.ndarray, values: np.ndarray, lo: int | None, hi: int | None
) -> tuple[np.ndarray, np.ndarray]:
    a = 0 if lo is None else int(np.searchsorted(steps, lo, "left"))
    b = len(steps) if hi is None else int(np.searchsorted(steps, hi, "right"))
    return steps[a:b], values[a:b]


def bounds(start: int | None, end: int | None, after: int | None) -> tuple[int | None, int | None]:
    lo = start
    if after is not None:
        lo = after + 1 if lo is None else max(lo, after + 1)
    return lo, end


def read_arrays(
    s: Session,
    run_id: str,
    key: str,
    start: int | None = None,
    end: int | None = None,
    after: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Steps (int64) and values (float64, NaN kept) of a scalar series in step order.

    ``start``/``end`` are inclusive; ``after`` keeps only steps after it."""
    sid = series_id(s, run_id, key)
    if sid is None:
        return blocks.concat([])
    lo, hi = bounds(start, end, after)
    st, va = blocks.concat(load(s, *in_range(sid, lo, hi)))
    return clip(st, va, lo, hi)


def read_tail(s: Session, run_id: str, key: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The last ``n`` points of a scalar series (reads only the blocks it needs)."""
    sid = series_id(s, run_id, key)
    if sid is None or n <= 0:
        return blocks.concat([])
    got: list[Block] = []
    have = 0
    q = (
        select(BLOCKS.c.first_step, BLOCKS.c.steps, BLOCKS.c.vals, BLOCKS.c.n)
        .where(BLOCKS.c.series_id == sid)
        .order_by(BLOCKS.c.first_step.desc())
    )
    for first, st, va, cnt in s.execute(q):
        got.append(blocks.decode(first, st, va))
        have += cnt
        if have >= n:
            break
    steps, values = blocks.concat(got[::-1])
    return steps[-n:], values[-n:]


def iter_blocks(s: Session, sid: int, after_step: int | None = None, limit: int = 64):
    """Up to ``limit`` blocks of a series after a step, in step order (for streaming export)."""
    where = [BLOCKS.c.series_id == sid]
    if after_step is not None:
        where.append(BLOCKS.c.first_step > after_step)
    q = (
        select(BLOCKS.c.first_step, BLOCKS.c.steps, BLOCKS.c.vals)
        .where(*where)
        .order_by(BLOCKS.c.first_step)
        .limit(limit)
    )
    return [blocks.decode(f, st, va) for f, st, va in s.execute(q)]


def run_series(s: Session, run_id: str, kind: str = "scalar") -> list[tuple[int, str]]:
    """(series id, key) of a run's series of one kind, by key."""
    q = (
        select(SeriesRow.id, SeriesRow.key)
        .where(SeriesRow.run_id == run_id, SeriesRow.kind == kind)
        .order_by(SeriesRow.key)
    )
    return [(i, k) for i, k in s.execute(q)]
