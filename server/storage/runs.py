"""Runs: create, read, update status, heartbeats, delete."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import overload

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from ..models import BatchRow, RunRow
from . import events
from .errors import RunNotFound
from .upsert import insert_for

UTC = timezone.utc


def utcnow() -> datetime:
    return datetime.now(UTC)


@overload
def as_utc(ts: datetime) -> datetime: ...
@overload
def as_utc(ts: None) -> None: ...
def as_utc(ts: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    if ts is None:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def dump_config(config: dict) -> str:
    """Configs are user data: arbitrary-size ints and any unicode are kept (escaped ASCII JSON)."""
    return json.dumps(config, ensure_ascii=True, allow_nan=False)


def load_config(text: str) -> dict:
    return json.loads(text)


def load_error(text: str | None) -> dict | None:
    return json.loads(text) if text else None


def create_run(
    s: Session, run_id: str, project: str, name: str, config: dict
) -> tuple[RunRow, bool]:
    """Create a run; creating one that exists is a no-op (the hook may resend). Returns (run, created)."""
    existing = s.get(RunRow, run_id)
    if existing is not None:
        return existing, False
    now = utcnow()
    row = RunRow(
        id=run_id,
        project=project,
        name=name,
        status="running",
        config=dump_config(config),
        created_at=now,
        updated_at=now,
        heartbeat_at=now,
        finished_at=None,
    )
    s.add(row)
    s.flush()
    events.record(s, run_id, "run")
    return row, True


def get_run(s: Session, run_id: str) -> RunRow:
    row = s.get(RunRow, run_id)
    if row is None:
        raise RunNotFound(run_id)
    return row


def list_runs(s: Session, project: str | None = None, limit: int = 1000) -> list[RunRow]:
    q = select(RunRow).order_by(RunRow.created_at.desc(), RunRow.id).limit(limit)
    if project is not None:
        q = q.where(RunRow.project == project)
    return list(s.scalars(q))


def merge_config(s: Session, run_id: str, extra: dict) -> RunRow:
    row = get_run(s, run_id)
    config = load_config(row.config)
    config.update(extra)
    row.config = dump_config(config)
    row.updated_at = utcnow()
    return row


def touch(s: Session, run_id: str) -> None:
    """Record a sign of life. A run the server marked crashed (no heartbeat for the timeout)
    that speaks again is running again; a run its own client finished (``finished``, or
    ``crashed`` with ``finished_at`` set) keeps its status: late data is stored, no more."""
    now = utcnow()
    res = s.execute(
        update(RunRow).where(RunRow.id == run_id).values(heartbeat_at=now, updated_at=now)
    )
    if res.rowcount == 0:  # type: ignore[attr-defined]
        raise RunNotFound(run_id)
    revived = s.execute(
        update(RunRow)
        .where(RunRow.id == run_id, RunRow.status == "crashed", RunRow.finished_at.is_(None))
        .values(status="running")
    )
    if revived.rowcount:  # type: ignore[attr-defined]
        events.record(s, run_id, "run")


def claim_batch(s: Session, run_id: str, batch_id: str) -> bool:
    """Record a batch id; False when it was stored before (a resend)."""
    dialect = s.get_bind().dialect.name
    first = s.execute(
        insert_for(dialect, BatchRow.__table__)
        .on_conflict_do_nothing(index_elements=["run_id", "batch_id"])
        .returning(BatchRow.batch_id),
        {"run_id": run_id, "batch_id": batch_id, "received_at": utcnow()},
    ).first()
    return first is not None


def finish_run(
    s: Session, run_id: str, status: str = "finished", error: dict | None = None
) -> RunRow:
    """The client says the run ended (``error``: {type, message} of an uncaught exception)."""
    row = get_run(s, run_id)
    now = utcnow()
    row.status = status
    row.error = json.dumps(error, ensure_ascii=True) if error else None
    row.finished_at = now
    row.updated_at = now
    row.heartbeat_at = now
    s.flush()
    events.record(s, run_id, "run")
    return row


def crash_due(s: Session, timeout_s: float) -> bool:
    """Whether some run is 'running' without a heartbeat for ``timeout_s`` (read only)."""
    cutoff = utcnow() - timedelta(seconds=timeout_s)
    q = select(RunRow.id).where(RunRow.status == "running", RunRow.heartbeat_at < cutoff)
    return s.execute(q.limit(1)).first() is not None


def mark_crashed(s: Session, timeout_s: float) -> list[str]:
    """Runs still 'running' whose last heartbeat is older than ``timeout_s`` become 'crashed'
    (``finished_at`` stays NULL: a heartbeat revives them); returns their ids (each gets a
    ``run`` event)."""
    cutoff = utcnow() - timedelta(seconds=timeout_s)
    ids = list(
        s.scalars(
            update(RunRow)
            .where(RunRow.status == "running", RunRow.heartbeat_at < cutoff)
            .values(status="crashed", updated_at=utcnow())
            .returning(RunRow.id)
        )
    )
    for run_id in ids:
        events.record(s, run_id, "run")
    return ids


def delete_run(s: Session, run_id: str) -> None:
    """Delete a run and everything of it (series, points, histograms, batches, alerts)."""
    get_run(s, run_id)
    s.execute(delete(RunRow).where(RunRow.id == run_id))
    events.forget_run(s, run_id)
    events.record(s, run_id, "deleted")
