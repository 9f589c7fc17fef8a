"""The diagnosis engine's per-run state."""

from __future__ import annotations

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import DiagnosisStateRow
from .runs import utcnow


def load_state(s: Session, run_id: str) -> object | None:
    """The run's saved state (parsed JSON), locked for this transaction; None before the first."""
    raw = s.scalar(
        select(DiagnosisStateRow.state).where(DiagnosisStateRow.run_id == run_id).with_for_update()
    )
    return orjson.loads(raw) if raw is not None else None


def save_state(s: Session, run_id: str, doc: object) -> None:
    data = orjson.dumps(doc).decode()
    row = s.get(DiagnosisStateRow, run_id)
    if row is None:
        s.add(DiagnosisStateRow(run_id=run_id, state=data, updated_at=utcnow()))
    else:
        row.state = data
        row.updated_at = utcnow()
    s.flush()
