"""Runs: the read API of the contract, and the hook's create / patch / heartbeat / finish."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query, Response, status

from ..live import mark_crashed
from ..models import RunRow
from ..schemas import FinishIn, RunDetailOut, RunIn, RunOut, RunPatchIn, checked_config
from ..storage import points
from ..storage import runs as store
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
        error=store.load_error(row.error),
    )


def run_detail(row: RunRow) -> RunDetailOut:
    return RunDetailOut(**run_out(row).model_dump(), config=store.load_config(row.config))


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
    responses={
        200: {"description": "the run already existed"},
        201: {"description": "created"},
        422: {
            "description": "a name, project, host, argv or config that cannot be stored (a NUL "
            "or lone surrogate, a config nested deeper than 64 levels or over 1 MiB): nothing "
            "is saved"
        },
    },
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
        return run_detail(store.get_run(s, run_id))


@router.patch(
    "/{run_id}",
    response_model=RunDetailOut,
    summary="Merge keys into a run's config",
    description="A config with a NUL or lone surrogate, nested too deep or too large (also "
    "once merged) is a 422 and nothing is changed.",
)
def patch_run(run_id: RunId, body: RunPatchIn, db: DbDep) -> RunDetailOut:
    with db.write_session() as s:
        row = store.merge_config(s, run_id, body.config)
        try:  # the merged config must fit too; raising here rolls the merge back
            checked_config(store.load_config(row.config))
        except ValueError as exc:
            raise HTTPException(422, f"merged config refused: {exc}") from None
        return run_detail(row)


@router.post(
    "/{run_id}/heartbeat",
    status_code=204,
    summary="The training process is alive",
    description="A run the server marked `crashed` for lack of heartbeats goes back to "
    "`running`; a run its client finished (`finished` or `crashed`) keeps its status. Runs "
    "are not marked crashed within the heartbeat timeout of the server's start or of its "
    "database's last outage.",
)
def heartbeat(run_id: RunId, db: DbDep) -> Response:
    with db.write_session() as s:
        store.touch(s, run_id)
    return Response(status_code=204)


@router.post(
    "/{run_id}/finish",
    response_model=RunOut,
    summary="Mark a run finished (or crashed)",
    description="`status` is `finished` or `crashed`; `error` ({type, message}, optional) says "
    "why a crashed run ended and is shown with the run. A run finished this way keeps its "
    "status when late batches or heartbeats arrive (they are stored); only a run the server "
    "marked `crashed` for lack of heartbeats goes back to `running` when it speaks again.",
)
def finish(run_id: RunId, body: FinishIn, db: DbDep) -> RunOut:
    error = body.error.model_dump() if body.error is not None else None
    with db.write_session() as s:
        return run_out(store.finish_run(s, run_id, body.status, error))


@router.delete("/{run_id}", status_code=204, summary="Delete a run and all its data")
def delete(run_id: RunId, db: DbDep) -> Response:
    with db.write_session() as s:
        store.delete_run(s, run_id)
    points.forget_run(db.cache, run_id)
    return Response(status_code=204)
