"""The write path of the hook: batches of points."""

from __future__ import annotations

import os
from datetime import datetime

from fastapi import APIRouter, Request
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from fitscope.protocol import API_PREFIX

from ..db import Database
from ..decode import Batch, decode_batch, parse_json
from ..diagnosis import Diagnoser
from ..jsonout import JSONOut
from ..schemas import BatchOut
from ..storage import alerts as alert_store
from ..storage import events, points
from ..storage.points import Stored
from ..storage.runs import utcnow
from .deps import DbDep, DiagnoserDep, RunId

router = APIRouter(prefix=f"{API_PREFIX}/runs", tags=["ingest"])
WORKER = str(os.getpid())


@router.post(
    "/{run_id}/batches",
    response_model=BatchOut,
    summary="Append a batch of points to a run",
    description=(
        "Scalars as columns `{key: {steps, values}}` and histograms; non-finite floats as the strings "
        "`NaN`, `Infinity`, `-Infinity`. The body may be gzip-compressed (every gzip member is "
        "decoded; trailing bytes that are not gzip are a 400). Each series is validated before "
        "anything is stored: a series whose key is not acceptable (empty, over 250 characters, "
        "a control character or lone surrogate, a key of the other kind) or whose data is "
        "malformed is left out and named in `refused` (`{key: reason}`) while the rest is "
        "stored (200). A batch that is malformed as a whole, or in which every series is "
        "refused, is a 422 (or 400) whose `detail` says why (and `refused` lists the keys). "
        "A batch whose `batch_id` was already stored is acknowledged and not stored again. "
        "Points for a run that is finished, or crashed by its own client, are stored but do "
        "not change its status."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BatchIn"}}},
        }
    },
    responses={413: {"description": "body too large"}, 422: {"description": "malformed batch"}},
)
async def post_batch(
    run_id: RunId, request: Request, db: DbDep, diagnoser: DiagnoserDep
) -> JSONOut:
    # size limit and gzip are handled by BodyMiddleware before this runs; parsing and
    # validating a large batch is CPU work, kept off the event loop with the storing
    body = await request.body()
    out = await run_in_threadpool(_decode_and_store, db, run_id, body, diagnoser)
    return JSONOut(out, headers={"X-Fitscope-Worker": WORKER})


def _decode_and_store(
    db: Database, run_id: str, body: bytes, diagnoser: Diagnoser | None = None
) -> dict:
    batch = decode_batch(parse_json(body))
    try:
        return _store(db, run_id, batch, diagnoser)
    except IntegrityError:
        # a cached series id of a run deleted (and made again) by another server process
        points.forget_run(db.cache, run_id)
        return _store(db, run_id, batch, diagnoser)


def _store(db: Database, run_id: str, batch: Batch, diagnoser: Diagnoser | None = None) -> dict:
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
            _announce(s, run_id, stored, started)
        open_alerts = alert_store.open_alerts(s, run_id, severities=("warning", "critical"))
        out = {
            "stored": stored.points,
            "duplicate": stored.duplicate,
            "refused": dict(batch.refused),
            "alerts": [
                {
                    "id": a.id,
                    "rule": a.rule,
                    "severity": a.severity,
                    "step": a.step,
                    "message": a.message,
                }
                for a in open_alerts
            ],
        }
    if diagnoser is not None:
        diagnoser.notify(notes)  # webhooks, after the commit
    return out


def _announce(s: Session, run_id: str, stored: Stored, started: datetime) -> None:
    """Record the batch's changes for the live streams (read back when they send)."""
    if stored.ranges:
        events.record(s, run_id, "points", {"ranges": stored.ranges})
    if stored.histograms:
        events.record(s, run_id, "histograms", {"items": stored.histograms})
    changed = alert_store.changed_since(s, run_id, started)
    if changed:
        events.record(s, run_id, "alerts", {"ids": changed})
