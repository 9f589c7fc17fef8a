from __future__ import annotations

import orjson
from fastapi import APIRouter

from ..schemas import AlertOut
from ..storage import alerts as store
from ..storage.runs import as_utc
from .deps import DbDep, RunId

router = APIRouter(prefix="/api/v1/runs", tags=["alerts"])


@router.get(
    "/{run_id}/alerts",
    response_model=list[AlertOut],
    summary="Diagnoses raised for a run: rule, severity, step, message, remedy, evidence",
)
def list_alerts(run_id: RunId, db: DbDep) -> list[AlertOut]:
    with db.session() as s:
        rows = store.list_alerts(s, run_id)
        return [
            AlertOut(
                id=a.id,
                rule=a.rule,
                severity=a.severity,  # type: ignore[arg-type]
                status=a.status,  # type: ignore[arg-type]
                step=a.step,
                onset_step=a.onset_step,
                message=a.message,
                remedy=a.remedy,
                evidence=orjson.loads(a.evidence),
                created_at=as_utc(a.created_at),
                updated_at=as_utc(a.updated_at),
            )
            for a in rows
        ]
