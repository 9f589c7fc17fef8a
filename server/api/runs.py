"""Runs: the read API of the contract, and the hook's create / patch / heartbeat / finish."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import StringConstraints

from fitscope.protocol import API_PREFIX, encode_float

from ..schemas import (
    FinishIn,
    RunDetailOut,
    RunIn,
    RunListOut,
    RunOut,
    RunPatchIn,
    WireFloat,
    checked_config,
)
from ..storage import runs as store
from ..storage import runs_table as table
from ..walltime import last_time
from .deps import DbDep, RunId
from .serialize import run_detail, run_out

router = APIRouter(prefix=f"{API_PREFIX}/runs", tags=["runs"])


def _invalid(where: str, field: str, msg: str) -> RequestValidationError:
    """A 422 shaped like FastAPI's own (as the OpenAPI document says)."""
    return RequestValidationError([{"loc": (where, field), "msg": msg, "type": "value_error"}])


def _wire(v: float | None) -> WireFloat | None:
    return None if v is None else encode_float(v)


def table_out(r: table.TableRow) -> RunListOut:
    return RunListOut(
        **run_out(r.run).model_dump(),
        health=r.health,  # type: ignore[arg-type]
        alert_rule=r.alert_rule,
        open_alerts=r.open_alerts,
        duration_s=r.duration_s,
        metrics={k: _wire(v) for k, v in r.metrics.items()},
    )


NO_CONTROL = r"^[^\x00-\x1f]*$"
METRIC_SPEC = r"^(min|max|last|best):[^\x00-\x1f]{1,250}$"
SORT_SPEC = r"^(created_at|name|project|status|step|duration|health|(min|max|last|best):[^\x00-\x1f]{1,250})$"
SORT_HELP = (
    "created_at (default), name, project, status, step, duration, health (worst open alert), "
    "or a metric column AGG:KEY"
)


@router.get(
    "",
    response_model=list[RunListOut],
    summary="All runs, newest first; or one filtered, sorted page of them",
    description="Without parameters: the runs newest first (at most 1,000). The header "
    "`X-Total-Count` gives how many runs match the filters, whatever `limit` and `offset`. "
    "Metric columns are `AGG:KEY` with AGG `min`, `max`, `last` or `best` (the max of keys "
    "such as accuracy/f1/auc, the min of others), e.g. `metric=best:val/loss`.",
)
def list_runs(
    db: DbDep,
    response: Response,
    project: str | None = Query(default=None, description="only this project"),
    status_: Literal["running", "finished", "crashed"] | None = Query(
        default=None, alias="status", description="only runs with this status"
    ),
    q: str | None = Query(
        default=None,
        max_length=200,
        pattern=NO_CONTROL,
        description="text in the name, project, id or tags (any case)",
    ),
    tag: str | None = Query(
        default=None, max_length=64, pattern=NO_CONTROL, description="only runs with this tag"
    ),
    health: Literal["problem", "critical", "warning", "ok"] | None = Query(
        default=None,
        description="problem: an open warning or critical; ok: none, and not crashed",
    ),
    sort: str = Query(
        default="created_at", max_length=260, pattern=SORT_SPEC, description=SORT_HELP
    ),
    order: Literal["asc", "desc"] | None = Query(
        default=None,
        description="default: desc for created_at, step, duration, health; a metric's best "
        "first; asc otherwise",
    ),
    limit: int = Query(default=1000, ge=1, le=10_000, description="at most this many runs"),
    offset: int = Query(default=0, ge=0, le=2**62, description="skip this many (paging)"),
    metric: Annotated[
        list[Annotated[str, StringConstraints(pattern=METRIC_SPEC)]] | None,
        Query(max_length=12, description="metric columns to add, each AGG:KEY (repeatable)"),
    ] = None,
) -> list[RunListOut]:
    try:
        metrics = [table.Metric.parse(m) for m in metric or []]
        rq = table.RunQuery(
            project=project,
            status=status_,
            q=q or None,
            tag=tag or None,
            health=health,
            sort=sort,
            order=order,
            limit=limit,
            offset=offset,
            metrics=metrics,
        )
        rq.sort_metric()
    except ValueError as exc:
        raise _invalid("query", "metric", f"{exc}; sort is one of {SORT_HELP}") from None
    with db.session() as s:
        rows, total = table.query(s, rq)
        response.headers["X-Total-Count"] = str(total)
        return [table_out(r) for r in rows]


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
        if created and body.tags:
            row.tags = table.dump_tags(table.clean_tags(body.tags))
        response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return run_detail(row)


@router.get("/{run_id}", response_model=RunDetailOut, summary="One run, with its config")
def get_run(run_id: RunId, db: DbDep) -> RunDetailOut:
    with db.session() as s:
        row = store.get_run(s, run_id)
        return run_detail(row, last_time(s, run_id))


@router.patch(
    "/{run_id}",
    response_model=RunDetailOut,
    summary="Change a run: merge keys into its config, rename it, set its tags or notes",
    description="A config with a NUL or lone surrogate, nested too deep or too large (also "
    "once merged) is a 422 and nothing is changed.",
)
def patch_run(run_id: RunId, body: RunPatchIn, db: DbDep) -> RunDetailOut:
    with db.write_session() as s:
        row = store.get_run(s, run_id)
        if body.config is not None:
            row = store.merge_config(s, run_id, body.config)
            try:  # the merged config must fit too; raising here rolls the merge back
                checked_config(store.load_config(row.config))
            except ValueError as exc:
                raise HTTPException(422, f"merged config refused: {exc}") from None
        try:
            row = table.set_meta(s, run_id, name=body.name, tags=body.tags, notes=body.notes)
        except ValueError as exc:
            raise _invalid("body", "tags", str(exc)) from None
        return run_detail(row, last_time(s, run_id))


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
    db.cache.forget_run(run_id)
    return Response(status_code=204)
