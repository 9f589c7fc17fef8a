"""The change feed behind the live streams (table ``events``).

Writers record what changed inside their own transaction; the id order is the
commit order (on PostgreSQL a transaction-scoped advisory lock serializes the
short stretch from recording to commit, and ``pg_notify`` wakes every server
process at commit; on SQLite writers are serialized anyway).  After commit, the
session helper hands the run ids in ``session.info`` to the in-process waiters.
"""

from __future__ import annotations

from datetime import datetime, timezone

import orjson
from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.orm import Session

from ..models import EventRow

CHANNEL = "fitscope_events"
_LOCK_KEY = 0x66697473  # "fits": the advisory lock that orders event ids by commit
RUN_KINDS = ("run", "deleted")  # the kinds the run-list stream follows
ALL = "*"  # the wake-up topic of the run-list streams


def record(s: Session, run_id: str, kind: str, data: dict | None = None) -> None:
    """Note a change of ``run_id`` for its live streams (in the caller's transaction)."""
    run_level = kind in RUN_KINDS
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        s.execute(text("SELECT pg_notify(:c, :p)"), {"c": CHANNEL, "p": run_id})
        if run_level:  # wakes the run-list streams too (identical payloads are sent once)
            s.execute(text("SELECT pg_notify(:c, :p)"), {"c": CHANNEL, "p": ALL})
    s.execute(
        insert(EventRow),
        {
            "run_id": run_id,
            "kind": kind,
            "data": orjson.dumps(data or {}).decode(),
            "created_at": datetime.now(timezone.utc),
        },
    )
    changed = s.info.setdefault("fitscope_changed", set())
    changed.add(run_id)
    if run_level:
        changed.add(ALL)


def last_id(s: Session) -> int:
    return int(s.scalar(select(func.coalesce(func.max(EventRow.id), 0))) or 0)


def for_run(s: Session, run_id: str, after: int, limit: int = 200) -> list[tuple[int, str, dict]]:
    """(id, kind, data) of a run's events after ``after``, oldest first."""
    q = (
        select(EventRow.id, EventRow.kind, EventRow.data)
        .where(EventRow.run_id == run_id, EventRow.id > after)
        .order_by(EventRow.id)
        .limit(limit)
    )
    return [(i, k, orjson.loads(d)) for i, k, d in s.execute(q)]


def for_run_list(s: Session, after: int, limit: int = 500) -> list[tuple[int, str, str]]:
    """(id, run_id, kind) of run-level changes (new, status, deleted) after ``after``."""
    q = (
        select(EventRow.id, EventRow.run_id, EventRow.kind)
        .where(EventRow.kind.in_(RUN_KINDS), EventRow.id > after)
        .order_by(EventRow.id)
        .limit(limit)
    )
    return [(i, r, k) for i, r, k in s.execute(q)]


def changes(s: Session, after: int, limit: int = 5000) -> list[tuple[int, str, str]]:
    """(id, run_id, kind) of every event after ``after`` (the process-wide change feed)."""
    q = (
        select(EventRow.id, EventRow.run_id, EventRow.kind)
        .where(EventRow.id > after)
        .order_by(EventRow.id)
        .limit(limit)
    )
    return [(i, r, k) for i, r, k in s.execute(q)]


def forget_run(s: Session, run_id: str) -> None:
    s.execute(delete(EventRow).where(EventRow.run_id == run_id))


def prune(s: Session, before: datetime) -> int:
    """Delete events older than ``before``; a stream resuming from one gets what is left."""
    res = s.execute(delete(EventRow).where(EventRow.created_at < before))
    return int(res.rowcount or 0)  # type: ignore[attr-defined]
