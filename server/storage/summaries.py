"""Reduced reads without reading every point: a series range as summary *units*.

A unit is a whole block (its summary columns), a 64-point chunk of a block (the
block's ``chunks`` records), or a single point.  Blocks wholly inside the range
give blocks or chunks; the (at most two) blocks cut by the range edges give
their points.  ``reduce.reduce_units`` turns units into buckets with exact
min/max, since summaries combine exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session

from ..reduce import Units, point_units
from . import blocks
from .blockwrite import Raw
from .points import BLOCKS, clip, load, series_id


@dataclass
class Meta:
    """The blocks of a range with their summaries, without their arrays (numpy columns)."""

    sid: int | None
    ids: np.ndarray
    first: np.ndarray
    last: np.ndarray
    n: np.ndarray
    vmin: np.ndarray  # NaN where the block is all NaN
    vmax: np.ndarray
    vsum: np.ndarray
    nfinite: np.ndarray
    nnan: np.ndarray

    @property
    def points(self) -> int:
        return int(self.n.sum())


_META = (
    "SELECT id, first_step, last_step, n, vmin, vmax, vsum, nfinite, nnan FROM point_blocks "
    "WHERE series_id = :sid AND last_step >= :lo AND first_step <= :hi ORDER BY first_step"
)
_CHUNKS = (
    "SELECT id, chunks FROM point_blocks "
    "WHERE series_id = :sid AND last_step >= :lo AND first_step <= :hi ORDER BY first_step"
)
_I, _F = np.int64, np.float64
_TYPES = (_I, _I, _I, _I, _F, _F, _F, _I, _I)
_LOWEST, _HIGHEST = 0, 2**63 - 1


def _bounds(start: int | None, end: int | None) -> tuple[int, int]:
    return (_LOWEST if start is None else start, _HIGHEST if end is None else end)


def meta(s: Session, run_id: str, key: str, start: int | None, end: int | None) -> Meta:
    """The blocks of a series overlapping [start, end] (plain DBAPI: a 10M-point series
    has ~5,000 blocks, enough rows for ORM overhead to show)."""
    sid = series_id(s, run_id, key)
    rows: list = []
    if sid is not None:
        lo, hi = _bounds(start, end)
        rows = Raw(s).all(_META, {"sid": sid, "lo": lo, "hi": hi})
    cols = list(zip(*rows, strict=True)) if rows else [()] * len(_TYPES)
    return Meta(sid, *(np.array(c, dtype=t) for c, t in zip(cols, _TYPES, strict=True)))


def units(s: Session, m: Meta, start: int | None, end: int | None, level: str) -> Units:
    """Units of the range at ``level`` ("block" or "chunk") plus edge points."""
    whole = np.ones(len(m.ids), dtype=bool)
    if start is not None:
        whole &= m.first >= start
    if end is not None:
        whole &= m.last <= end
    parts = []
    if whole.any():
        if level == "block":
            parts.append(_block_level(m, whole))
        else:
            parts.append(_chunk_level(s, m, whole, start, end))
    last = [int(m.last[whole].max())] if whole.any() else []
    edge = m.ids[~whole].tolist()
    if edge:
        st, va = clip(*blocks.concat(load(s, BLOCKS.c.id.in_(edge))), start, end)
        parts.append(point_units(st, va))
        last += [int(st.max())] if len(st) else []
    if not parts:
        parts.append(point_units(*blocks.concat([])))
    u = Units(*(np.concatenate(col) for col in zip(*(p.fields() for p in parts), strict=True)))
    if len(parts) > 1:
        order = np.argsort(u.first_step, kind="stable")
        u = Units(*(f[order] for f in u.fields()))
    u.last_step = max(last) if last else None
    return u


def _block_level(m: Meta, whole: np.ndarray) -> Units:
    return Units(
        m.first[whole],
        m.n[whole],
        np.where(np.isnan(m.vmin[whole]), np.inf, m.vmin[whole]),
        np.where(np.isnan(m.vmax[whole]), -np.inf, m.vmax[whole]),
        m.vsum[whole],
        m.nfinite[whole],
        m.nnan[whole],
    )


def _chunk_level(
    s: Session, m: Meta, whole: np.ndarray, start: int | None, end: int | None
) -> Units:
    wanted = set(m.ids[whole].tolist())
    lo, hi = _bounds(start, end)
    rows = Raw(s).all(_CHUNKS, {"sid": m.sid, "lo": lo, "hi": hi})
    # one buffer, one frombuffer: concatenating structured arrays is slow
    r = np.frombuffer(b"".join(bytes(ch) for i, ch in rows if i in wanted), blocks.CHUNK_DTYPE)
    return Units(
        r["first"].astype(np.int64),
        r["n"].astype(np.int64),
        r["lo"],
        r["hi"],
        r["sum"],
        r["nfinite"].astype(np.int64),
        r["nnan"].astype(np.int64),
    )
