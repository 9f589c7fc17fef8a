"""Answers built once from stored rows, for every route and stream that shows them."""

from __future__ import annotations

from typing import Any

import orjson

from ..diagnosis.labels import evidence_labels
from ..models import AlertRow
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
