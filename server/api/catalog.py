"""What the runs table offers to filter and add as columns: projects and metric keys."""

from __future__ import annotations

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import func, select

from fitscope.protocol import API_PREFIX

from ..models import RunRow, SeriesRow
from .deps import DbDep

router = APIRouter(prefix=API_PREFIX, tags=["runs"])


class ProjectOut(BaseModel):
    project: str
    runs: int


@router.get("/projects", response_model=list[ProjectOut], summary="Projects, by name")
def projects(db: DbDep) -> list[ProjectOut]:
    q = select(RunRow.project, func.count()).group_by(RunRow.project).order_by(RunRow.project)
    with db.session() as s:
        return [ProjectOut(project=p, runs=n) for p, n in s.execute(q)]


@router.get(
    "/keys",
    response_model=list[str],
    summary="Scalar metric keys of any run, by name (for the runs table's metric columns)",
)
def keys(
    db: DbDep,
    prefix: str = Query(default="", max_length=250, description="only keys starting with this"),
    limit: int = Query(default=500, ge=1, le=5000),
) -> list[str]:
    q = select(SeriesRow.key).where(SeriesRow.kind == "scalar").distinct().order_by(SeriesRow.key)
    if prefix:
        q = q.where(SeriesRow.key.startswith(prefix, autoescape=True))
    with db.session() as s:
        return list(s.scalars(q.limit(limit)))
