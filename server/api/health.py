from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

import fitscope
from fitscope.protocol import API_PREFIX

from ..schemas import HealthOut
from .deps import DbDep

router = APIRouter(prefix=API_PREFIX, tags=["health"])


@router.get("/health", response_model=HealthOut, summary="Server and database are up")
def health(db: DbDep) -> HealthOut:
    with db.session() as s:
        s.execute(text("SELECT 1"))
    return HealthOut(status="ok", database=db.dialect, version=fitscope.__version__)
