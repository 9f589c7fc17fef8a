"""The ingest service: one batch from its body to stored points, diagnosis and live events.

``store_batch`` is what ``POST /api/v1/runs/{id}/batches`` does, without HTTP: decode and
validate the body, store the points (once per ``batch_id``), let the diagnosis rules see
them in the same transaction, record what changed for the live streams, and read back the
run's open alerts for the answer.  Webhooks go out after the commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from .db import Database
from .decode import Batch, decode_batch, parse_json
from .diagnosis import Diagnoser
from .models import AlertRow
from .storage import StaleSeriesIds, events, points
from .storage import alerts as alert_store
from .storage.points import Stored
from .storage.runs import utcnow


@dataclass
class BatchResult:
    """What a batch did: the points stored, the keys refused, the run's open alerts."""

    stored: Stored
    refused: dict[str, str] = field(default_factory=dict)
    alerts: list[AlertRow] = field(default_factory=list)  # open warnings and criticals


def store_batch(
    db: Database, run_id: str, body: bytes, diagnoser: Diagnoser | None = None
) -> BatchResult:
    """Decode, store, diagnose and announce one batch (``BadBatch``: malformed; storage
    errors such as ``RunNotFound`` or ``SeriesKindConflict`` pass through)."""
    batch = decode_batch(parse_json(body))
    try:
        return _store(db, run_id, batch, diagnoser)
    except StaleSeriesIds:
        # storage forgot the stale ids and the transaction rolled back: once more, from the
        # database this time
        return _store(db, run_id, batch, diagnoser)


def _store(db: Database, run_id: str, batch: Batch, diagnoser: Diagnoser | None) -> BatchResult:
    """Store a batch, then (same transaction) evaluate what it changed, then announce it."""
    notes: list[dict] = []
    with db.write_session() as s:
        started = utcnow()
        stored = points.ingest(s, run_id, batch, db.cache)
        if not stored.duplicate:
            if diagnoser is not None:
                # the rules see the batch in this transaction; alerts they create or update
                # (updated_at >= started) are announced to the live streams just below
                hists = [(h.key, h.step, h.data) for h in batch.histograms]
                scalars = {k: (st.tolist(), v.tolist()) for k, (st, v) in batch.scalars.items()}
                notes = diagnoser.observe(s, run_id, scalars, hists)
            announce(s, run_id, stored, started)
        open_alerts = alert_store.open_alerts(s, run_id, severities=("warning", "critical"))
    if diagnoser is not None:
        diagnoser.notify(notes)  # webhooks, after the commit
    return BatchResult(stored, dict(batch.refused), open_alerts)


def announce(s: Session, run_id: str, stored: Stored, started: datetime) -> None:
    """Record the batch's changes for the live streams (read back when they send)."""
    if stored.ranges:
        events.record(s, run_id, "points", {"ranges": stored.ranges})
    if stored.histograms:
        events.record(s, run_id, "histograms", {"items": stored.histograms})
    changed = alert_store.changed_since(s, run_id, started)
    if changed:
        events.record(s, run_id, "alerts", {"ids": changed})
