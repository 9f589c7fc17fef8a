"""The write path of the hook: batches of points (HTTP only; ``server/ingest.py`` does the work)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from fitscope.protocol import API_PREFIX

from ..ingest import store_batch
from ..jsonout import JSONOut
from ..schemas import BatchOut
from .deps import WORKER, DbDep, DiagnoserDep, RunId
from .serialize import batch_out

router = APIRouter(prefix=f"{API_PREFIX}/runs", tags=["ingest"])


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
    result = await run_in_threadpool(store_batch, db, run_id, body, diagnoser)
    return JSONOut(batch_out(result), headers={"X-Fitscope-Worker": WORKER})
