from __future__ import annotations

import os
from typing import Annotated

from fastapi import Depends, Path, Request

from ..db import Database
from ..diagnosis import Diagnoser
from ..schemas import RUN_ID_PATTERN
from ..settings import Settings

WORKER = str(os.getpid())  # this server process, named by the X-Fitscope-Worker header


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
    400: {
        "description": "malformed body (not JSON, not gzip, trailing bytes after gzip), a NUL in "
        "a query parameter, or a Host that is not a name of this server (FITSCOPE_ALLOWED_HOSTS)"
    },
    401: {
        "description": "the server requires a token (FITSCOPE_TOKEN) and none or a wrong one was sent"
    },
    403: {"description": "a write from another origin (Origin, Sec-Fetch-Site)"},
    404: {"description": "no such run"},
    405: {"description": "method not allowed for this path"},
    413: {"description": "body larger than the server accepts"},
    415: {"description": "writes must be Content-Type: application/json (gzip encoding allowed)"},
    429: {
        "description": "too many wrong tokens from this address: locked out for Retry-After seconds"
    },
    503: {
        "description": "database busy, unavailable or disconnected (or too many live streams); "
        "retry after the Retry-After delay"
    },
}
RunId = Annotated[str, Path(pattern=RUN_ID_PATTERN, description="the run's id")]
