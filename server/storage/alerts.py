"""Alerts raised by the diagnosis rules: one row per episode, updated while it lasts."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import AlertRow
from . import runs


def list_alerts(s: Session, run_id: str) -> list[AlertRow]:
    runs.get_run(s, run_id)
    return list(
        s.scalars(
            select(AlertRow).where(AlertRow.run_id == run_id).order_by(AlertRow.step, AlertRow.id)
        )
    )


def open_alerts(s: Session, run_id: str, severities: tuple[str, ...]) -> list[AlertRow]:
    return list(
        s.scalars(
            select(AlertRow)
            .where(
                AlertRow.run_id == run_id,
                AlertRow.status == "open",
                AlertRow.severity.in_(severities),
            )
            .order_by(AlertRow.step)
        )
    )


FIELDS = ("rule", "severity", "status", "step", "onset_step", "message", "remedy")


def save_episodes(s: Session, run_id: str, episodes: Iterable[Any]) -> list[AlertRow]:
    """Insert or update the alert row of each changed episode (objects with the alert's fields,
    ``alert_id`` and ``dirty``); new rows' ids are written back to ``alert_id``. Returns the
    rows written."""
    now = runs.utcnow()
    written: list[AlertRow] = []
    for ep in episodes:
        if not ep.dirty:
            continue
        evidence = orjson.dumps(ep.evidence, option=orjson.OPT_NON_STR_KEYS).decode()
        row = s.get(AlertRow, ep.alert_id) if ep.alert_id is not None else None
        if row is None:
            row = AlertRow(run_id=run_id, created_at=now)
            s.add(row)
        for f in FIELDS:
            setattr(row, f, getattr(ep, f))
        row.evidence = evidence
        row.updated_at = now
        s.flush()
        ep.alert_id = row.id
        ep.dirty = False
        written.append(row)
    return written


def changed_since(s: Session, run_id: str, since: datetime) -> list[int]:
    """Ids of the run's alerts created or updated at or after ``since``."""
    q = select(AlertRow.id).where(AlertRow.run_id == run_id, AlertRow.updated_at >= since)
    return list(s.scalars(q.order_by(AlertRow.id)))


def by_ids(s: Session, run_id: str, ids: list[int]) -> list[AlertRow]:
    if not ids:
        return []
    q = select(AlertRow).where(AlertRow.run_id == run_id, AlertRow.id.in_(ids))
    return list(s.scalars(q.order_by(AlertRow.step, AlertRow.id)))
