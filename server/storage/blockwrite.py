"""Writing chunks of points into a series' blocks: the hot half of ingest.

Straight DBAPI statements on the session's own connection (same transaction):
per series a handful of tiny statements, where SQLAlchemy's per-statement
overhead would cost more than the database work.  The SQL is written with
``:name`` parameters and adapted to psycopg's ``%(name)s``.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from . import blocks
from .blocks import BLOCK_POINTS, MERGE_BELOW, Block

COLUMNS = (
    "first_step",
    "last_step",
    "n",
    "steps",
    "vals",
    "vmin",
    "vmax",
    "vsum",
    "nfinite",
    "nnan",
    "chunks",
)
INSERT = (
    f"INSERT INTO point_blocks (series_id, {', '.join(COLUMNS)}) "
    f"VALUES (:series_id, {', '.join(':' + c for c in COLUMNS)})"
)
UPDATE = f"UPDATE point_blocks SET {', '.join(f'{c} = :{c}' for c in COLUMNS)} WHERE id = :id"
TAIL = (
    "SELECT id, first_step, last_step, n FROM point_blocks WHERE series_id = :sid "
    "ORDER BY first_step DESC LIMIT 1"
)
ARRAYS_BY_ID = "SELECT first_step, steps, vals FROM point_blocks WHERE id = :id"
OVERLAP = (
    "SELECT id, first_step, steps, vals FROM point_blocks "
    "WHERE series_id = :sid AND last_step >= :a AND first_step <= :b ORDER BY first_step"
)
DELETE_BY_ID = "DELETE FROM point_blocks WHERE id = :id"
LOCK_SERIES = "SELECT id FROM series WHERE id = ANY(:ids) ORDER BY id FOR UPDATE"


@cache
def _pg(sql: str) -> str:
    return re.sub(r":(\w+)", r"%(\1)s", sql)


class Raw:
    """Plain DBAPI statements on a session's connection (inside its transaction)."""

    def __init__(self, s: Session) -> None:
        conn = s.connection()
        self.pg = conn.dialect.name == "postgresql"
        self.cur: Any = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]

    def sql(self, sql: str) -> str:
        return _pg(sql) if self.pg else sql

    def all(self, sql: str, params: dict) -> list[tuple]:
        self.cur.execute(self.sql(sql), params)
        return list(self.cur.fetchall())

    def run(self, sql: str, params: dict) -> None:
        self.cur.execute(self.sql(sql), params)

    def many(self, sql: str, rows: list[dict]) -> None:
        if rows:
            self.cur.executemany(self.sql(sql), rows)


def write(s: Session, chunks: dict[int, tuple[np.ndarray, np.ndarray]]) -> None:
    """Write each series' normalized (sorted, unique) chunk of points."""
    db = Raw(s)
    sids = sorted(chunks)
    if db.pg:
        # concurrent batches of one series take turns (locked in id order: no deadlock)
        db.all(LOCK_SERIES, {"ids": sids})
    inserts: list[dict] = []
    updates: list[dict] = []
    for sid in sids:
        steps, values = chunks[sid]
        tail = db.all(TAIL, {"sid": sid})
        if tail and steps[0] <= tail[0][2]:  # reaches back into stored steps
            inserts.extend(_rewrite_overlap(db, sid, steps, values))
            continue
        if tail and len(steps) < MERGE_BELOW and tail[0][3] + len(steps) <= BLOCK_POINTS:
            ((first, st, va),) = db.all(ARRAYS_BY_ID, {"id": tail[0][0]})
            old = blocks.decode(first, st, va)
            merged = blocks.concat([old, Block(steps, values)])
            updates.append(Block(*merged).row() | {"id": tail[0][0]})
            continue
        inserts.extend(b.row() | {"series_id": sid} for b in blocks.split(steps, values))
    db.many(UPDATE, updates)
    db.many(INSERT, inserts)


def _rewrite_overlap(db: Raw, sid: int, steps: np.ndarray, values: np.ndarray) -> list[dict]:
    """Merge a chunk with the blocks whose ranges it overlaps; returns the rows to insert."""
    rows = db.all(OVERLAP, {"sid": sid, "a": int(steps[0]), "b": int(steps[-1])})
    db.many(DELETE_BY_ID, [{"id": r[0]} for r in rows])
    old = [blocks.decode(f, st, va) for _, f, st, va in rows]
    st, va = blocks.merge(old, steps, values)
    return [blk.row() | {"series_id": sid} for blk in blocks.split(st, va)]
