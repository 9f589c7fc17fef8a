"""The login form for a server that requires a token (browsers get a session cookie)."""

from __future__ import annotations

import hmac
import urllib.parse

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from fitscope_web import STATIC_DIR

from .security import COOKIE, session_value


def mount_login(app: FastAPI, token: str | None) -> None:
    @app.get("/login", include_in_schema=False)
    def login_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "login.html")

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        if not token:
            return RedirectResponse("/", status_code=303)
        form = urllib.parse.parse_qs((await request.body()).decode(errors="replace")[:4096])
        given = (form.get("token") or [""])[0]
        if not hmac.compare_digest(given.encode(), token.encode()):
            # counts toward the client's lockout (security.py answers 429 while it lasts)
            request.app.state.throttle.failed(request.client.host if request.client else "?")
            return RedirectResponse("/login?failed=1", status_code=303)
        resp = RedirectResponse("/", status_code=303)
        resp.set_cookie(
            COOKIE,
            session_value(token),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            max_age=30 * 24 * 3600,
        )
        return resp
