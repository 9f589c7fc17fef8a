"""Security for every response and, when a token is configured, for every request.

- Headers: a Content-Security-Policy with no inline or remote script, no
  MIME sniffing, no framing, no referrer.
- Writes to the API must be ``application/json``: a cross-site form cannot
  send that without a CORS preflight, which this server never grants.
- With a token (``FITSCOPE_TOKEN``), reads and writes need either
  ``Authorization: Bearer <token>`` (the hook, scripts) or the session cookie
  set by the login form (browsers). Comparisons are constant-time and the
  token is never logged or echoed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from http.cookies import SimpleCookie
from typing import Any

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",  # Plotly injects its own <style>; styles cannot run code
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
COOKIE = "fitscope_session"
PUBLIC_PATHS = (
    "/api/v1/health",
    "/login",
    "/static/style.css",
    "/static/login.css",
    "/favicon.ico",
)
WRITE_METHODS = ("POST", "PUT", "PATCH")


def session_value(token: str) -> str:
    """What the session cookie holds: derived from the token, never the token itself."""
    return hmac.new(token.encode(), b"fitscope-session-v1", hashlib.sha256).hexdigest()


class SecurityMiddleware:
    def __init__(self, app: Any, token: str | None) -> None:
        self.app = app
        self.token = token
        self.session = session_value(token) if token else None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = list(message.get("headers", [])) + HEADERS
            await send(message)

        path: str = scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.token and not path.startswith(PUBLIC_PATHS) and not self._authorized(headers):
            if path.startswith("/api/"):
                await _respond(
                    send_with_headers,
                    401,
                    {
                        "detail": "missing or invalid token: send "
                        "'Authorization: Bearer <token>' (FITSCOPE_TOKEN)"
                    },
                    [(b"www-authenticate", b"Bearer")],
                )
            else:
                await _respond(send_with_headers, 303, None, [(b"location", b"/login")])
            return
        has_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
        if path.startswith("/api/") and scope["method"] in WRITE_METHODS and has_body:
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype != "application/json":
                await _respond(
                    send_with_headers,
                    415,
                    {"detail": "request body must be sent as Content-Type: application/json"},
                )
                return
        await self.app(scope, receive, send_with_headers)

    def _authorized(self, headers: dict[str, str]) -> bool:
        assert self.token is not None and self.session is not None
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer " and hmac.compare_digest(
            auth[7:].strip().encode(), self.token.encode()
        ):
            return True
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # a malformed cookie header is simply no session
            return False
        morsel = cookie.get(COOKIE)
        return morsel is not None and hmac.compare_digest(
            morsel.value.encode(), self.session.encode()
        )


async def _respond(send: Any, status: int, body: dict | None, extra: list | None = None) -> None:
    payload = json.dumps(body).encode() if body is not None else b""
    headers = [(b"content-length", str(len(payload)).encode())] + (extra or [])
    if body is not None:
        headers.append((b"content-type", b"application/json"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
