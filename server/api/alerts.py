from __future__ import annotations

from fastapi import APIRouter

from fitscope.protocol import API_PREFIX

from ..schemas import AlertOut
from ..storage import alerts as store
from .deps import DbDep, RunId
from .serialize import alert_fields

router = APIRouter(prefix=f"{API_PREFIX}/runs", tags=["alerts"])


@router.get(
    "/{run_id}/alerts",
    response_model=list[AlertOut],
    summary="Diagnoses raised for a run: rule, severity, step, message, remedy, evidence",
)
def list_alerts(run_id: RunId, db: DbDep) -> list[AlertOut]:
    with db.session() as s:
        rows = store.list_alerts(s, run_id)
        return [AlertOut(**alert_fields(a)) for a in rows]
