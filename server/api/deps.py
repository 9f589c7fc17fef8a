from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from ..db import Database
from ..diagnosis import Diagnoser
from ..schemas import RUN_ID_PATTERN
from ..settings import Settings


def get_db(request: Request) -> Database:
    return request.app.state.db


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_diagnoser(request: Request) -> Diagnoser | None:
    return getattr(request.app.state, "diagnoser", None)


DiagnoserDep = Annotated[Diagnoser | None, Depends(get_diagnoser)]
DbDep = Annotated[Database, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ERROR_RESPONSES: dict[int | str, dict] = {
    400: {"description": "malformed body (not JSON, not gzip)"},
    401: {
        "description": "the server requires a token (FITSCOPE_TOKEN) and none or a wrong one was sent"
    },
    404: {"description": "no such run"},
    405: {"description": "method not allowed for this path"},
    413: {"description": "body larger than the server accepts"},
    415: {"description": "writes must be Content-Type: application/json (gzip encoding allowed)"},
    503: {"description": "database busy or unavailable; retry after the Retry-After delay"},
}
RunId = Annotated[str, Path(pattern=RUN_ID_PATTERN, description="the run's id")]
