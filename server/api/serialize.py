"""Answers built once from stored rows, for every route and stream that shows them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from ..diagnosis.labels import evidence_labels
from ..ingest import BatchResult
from ..models import AlertRow, RunRow
from ..schemas import RunDetailOut, RunOut
from ..storage import runs as run_store
from ..storage import runs_table as table
from ..storage.runs import as_utc


def alert_fields(a: AlertRow) -> dict[str, Any]:
    """An alert as the API, the live stream and the export show it (times left as datetimes).

    ``evidence_labels`` gives each evidence key its human label, so every view of an alert
    reads the same words."""
    evidence = orjson.loads(a.evidence)
    return {
        "id": a.id,
        "rule": a.rule,
        "severity": a.severity,
        "status": a.status,
        "step": a.step,
        "onset_step": a.onset_step,
        "message": a.message,
        "remedy": a.remedy,
        "evidence": evidence,
        "evidence_labels": evidence_labels(evidence),
        "created_at": as_utc(a.created_at),
        "updated_at": as_utc(a.updated_at),
    }


def alert_json(a: AlertRow) -> dict[str, Any]:
    """``alert_fields`` with its times as ISO 8601 strings (for hand-built JSON)."""
    out = alert_fields(a)
    out["created_at"] = out["created_at"].isoformat()
    out["updated_at"] = out["updated_at"].isoformat()
    return out


def run_out(row: RunRow) -> RunOut:
    """A run as the API, the live streams and the export show it."""
    return RunOut(
        id=row.id,
        project=row.project,
        name=row.name,
        status=row.status,  # type: ignore[arg-type]
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        heartbeat_at=as_utc(row.heartbeat_at),
        finished_at=as_utc(row.finished_at),
        tags=table.load_tags(row.tags),
        notes=row.notes or "",
        last_step=row.last_step,
        error=run_store.load_error(row.error),
    )


def run_detail(row: RunRow, last_time: float | None = None) -> RunDetailOut:
    """A run with its config; ``started_at`` from the hook's own clock where it sent one."""
    out = run_out(row)
    config = run_store.load_config(row.config)
    meta = config.get("fitscope") if isinstance(config, dict) else None
    started = _utc(meta.get("started_at")) if isinstance(meta, dict) else None
    return RunDetailOut(
        **out.model_dump(),
        config=config,
        started_at=started or out.created_at,
        last_time=_utc(last_time),
    )


def _utc(seconds: object) -> datetime | None:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return None
    try:
        return datetime.fromtimestamp(float(seconds), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None


def alert_brief(a: AlertRow) -> dict[str, Any]:
    """An alert as the answer to a batch names it (``AlertBrief``)."""
    return {
        "id": a.id,
        "rule": a.rule,
        "severity": a.severity,
        "step": a.step,
        "message": a.message,
    }


def batch_out(r: BatchResult) -> dict[str, Any]:
    """The answer to a batch (``BatchOut``)."""
    return {
        "stored": r.stored.points,
        "duplicate": r.stored.duplicate,
        "refused": r.refused,
        "alerts": [alert_brief(a) for a in r.alerts],
    }
