"""Runs: the read API of the contract, and the hook's create / patch / heartbeat / finish."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Query, Response, status

from ..live import mark_crashed
from ..models import RunRow
from ..schemas import FinishIn, RunDetailOut, RunIn, RunOut, RunPatchIn
from ..storage import points
from ..storage import runs as store
from ..walltime import last_time
from .deps import DbDep, RunId, SettingsDep

router = APIRouter(prefix="/api/v1/runs", tags=["runs"])


def run_out(row: RunRow) -> RunOut:
    return RunOut(
        id=row.id,
        project=row.project,
        name=row.name,
        status=row.status,  # type: ignore[arg-type]
        created_at=store.as_utc(row.created_at),
        updated_at=store.as_utc(row.updated_at),
        heartbeat_at=store.as_utc(row.heartbeat_at),
        finished_at=store.as_utc(row.finished_at),
    )


def _utc(seconds: object) -> datetime | None:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return None
    try:
        return datetime.fromtimestamp(float(seconds), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None


def run_detail(row: RunRow, last_time: float | None = None) -> RunDetailOut:
    """A run with its config; ``started_at`` from the hook's own clock where it sent one."""
    out = run_out(row)
    config = store.load_config(row.config)
    meta = config.get("fitscope") if isinstance(config, dict) else None
    started = _utc(meta.get("started_at")) if isinstance(meta, dict) else None
    return RunDetailOut(
        **out.model_dump(),
        config=config,
        started_at=started or out.created_at,
        last_time=_utc(last_time),
    )


@router.get("", response_model=list[RunOut], summary="All runs, newest first")
def list_runs(
    db: DbDep,
    settings: SettingsDep,
    project: str | None = Query(default=None, description="only this project"),
) -> list[RunOut]:
    mark_crashed(db, settings.heartbeat_timeout)
    with db.session() as s:
        return [run_out(r) for r in store.list_runs(s, project)]


@router.post(
    "",
    response_model=RunDetailOut,
    summary="Create a run (idempotent by id)",
    responses={200: {"description": "the run already existed"}, 201: {"description": "created"}},
)
def create_run(body: RunIn, db: DbDep, response: Response) -> RunDetailOut:
    config = dict(body.config)
    if body.host or body.argv:
        config.setdefault("fitscope", {}).update({"host": body.host, "argv": body.argv})
    with db.write_session() as s:
        row, created = store.create_run(s, body.id, body.project, body.name, config)
        response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return run_detail(row)


@router.get("/{run_id}", response_model=RunDetailOut, summary="One run, with its config")
def get_run(run_id: RunId, db: DbDep, settings: SettingsDep) -> RunDetailOut:
    mark_crashed(db, settings.heartbeat_timeout)
    with db.session() as s:
        row = store.get_run(s, run_id)
        return run_detail(row, last_time(s, run_id))


@router.patch("/{run_id}", response_model=RunDetailOut, summary="Merge keys into a run's config")
def patch_run(run_id: RunId, body: RunPatchIn, db: DbDep) -> RunDetailOut:
    with db.write_session() as s:
        return run_detail(store.merge_config(s, run_id, body.config))


@router.post("/{run_id}/heartbeat", status_code=204, summary="The training process is alive")
def heartbeat(run_id: RunId, db: DbDep) -> Response:
    with db.write_session() as s:
        store.touch(s, run_id)
    return Response(status_code=204)


@router.post("/{run_id}/finish", response_model=RunOut, summary="Mark a run finished (or crashed)")
def finish(run_id: RunId, body: FinishIn, db: DbDep) -> RunOut:
    with db.write_session() as s:
        return run_out(store.finish_run(s, run_id, body.status))


@router.delete("/{run_id}", status_code=204, summary="Delete a run and all its data")
def delete(run_id: RunId, db: DbDep) -> Response:
    with db.write_session() as s:
        store.delete_run(s, run_id)
    points.forget_run(db.cache, run_id)
    return Response(status_code=204)
