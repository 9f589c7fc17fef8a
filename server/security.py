"""Security for every response and, when a token is configured, for every request.

- Headers: a Content-Security-Policy with no inline or remote script, no
  MIME sniffing, no framing, no referrer.
- Writes to the API must be ``application/json``: a cross-site form cannot
  send that without a CORS preflight, which this server never grants.
- With a token (``FITSCOPE_TOKEN``), reads and writes need either
  ``Authorization: Bearer <token>`` (the hook, scripts) or the session cookie
  set by the login form (browsers). Comparisons are constant-time and the
  token is never logged or echoed.  Public paths are matched exactly, after
  ``.``/``..`` segments are resolved.
- Wrong credentials lock the client address out for a while (``throttle.py``).
- DNS rebinding: the ``Host`` header must name this server: an IP address, a
  loopback name (``localhost``), the host of ``FITSCOPE_PUBLIC_URL`` or one of
  ``FITSCOPE_ALLOWED_HOSTS``; with a token and no ``FITSCOPE_ALLOWED_HOSTS``, any
  (the token is what protects the data then).  Writes (POST, PUT, PATCH,
  DELETE) from a browser must come from the same origin (``Origin`` or
  ``Sec-Fetch-Site``).
- A NUL character in a query parameter is a 400.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import posixpath
import urllib.parse
from http.cookies import SimpleCookie
from typing import Any

from fitscope.protocol import paths

from .throttle import Throttle

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
PUBLIC_PATHS = frozenset(
    (
        paths.HEALTH,
        "/login",
        "/static/style.css",
        "/static/login.css",
        "/favicon.ico",
    )
)
WRITE_METHODS = ("POST", "PUT", "PATCH")
ORIGIN_CHECKED = ("POST", "PUT", "PATCH", "DELETE")
# names a DNS-rebinding page cannot own ("testserver": Starlette's test client)
LOOPBACK_NAMES = frozenset(("localhost", "testserver"))


def normalized(path: str) -> str:
    """The path as a file server resolves it: ``/static/style.css/../run.js`` is ``/static/run.js``."""
    if "/." not in path and "//" not in path:
        return path
    return "/" + posixpath.normpath(path).lstrip("/")


def host_name(host_header: str) -> str:
    """``Host`` without its port, lower-case, without a trailing dot."""
    h = host_header.strip().lower()
    if h.startswith("["):
        return h[1 : h.find("]")] if "]" in h else h
    if h.count(":") == 1:
        h = h.split(":", 1)[0]
    return h.rstrip(".")


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def configured_hosts(configured: str | None, public_url: str | None) -> set[str]:
    """FITSCOPE_ALLOWED_HOSTS (comma-separated) and the host of FITSCOPE_PUBLIC_URL."""
    names = {n.strip().lower().rstrip(".") for n in (configured or "").split(",") if n.strip()}
    if public_url:
        pub = urllib.parse.urlsplit(public_url).hostname
        if pub:
            names.add(pub.lower())
    return names


def allowed_hosts(
    configured: str | None, public_url: str | None, token: str | None
) -> set[str] | None:
    """The host names this server answers to besides IP addresses and loopback names;
    None: any (``*`` configured, or a token and nothing configured)."""
    names = {n.strip().lower() for n in (configured or "").split(",") if n.strip()}
    if "*" in names or (token and not names):
        return None
    return configured_hosts(configured, public_url)


def host_ok(name: str, allowed: set[str] | None) -> bool:
    if allowed is None or is_ip(name) or name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    return name in allowed


def session_value(token: str) -> str:
    """What the session cookie holds: derived from the token, never the token itself."""
    return hmac.new(token.encode(), b"fitscope-session-v1", hashlib.sha256).hexdigest()


class SecurityMiddleware:
    def __init__(
        self,
        app: Any,
        token: str | None,
        allowed: set[str] | None = None,
        throttle: Throttle | None = None,
        origin_hosts: set[str] | None = None,
    ) -> None:
        self.app = app
        self.token = token
        self.session = session_value(token) if token else None
        self.allowed = allowed
        self.throttle = throttle if throttle is not None else Throttle()
        # host names a browser's Origin may carry besides the Host it asked for (a reverse
        # proxy may rewrite Host): FITSCOPE_ALLOWED_HOSTS and FITSCOPE_PUBLIC_URL's host
        self.origin_hosts = origin_hosts or set()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = list(message.get("headers", [])) + HEADERS
            await send(message)

        path: str = normalized(scope["path"])
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._edge_check(scope, headers)
        if refusal is not None:
            await _respond(send_with_headers, refusal[0], {"detail": refusal[1]})
            return
        addr = (scope.get("client") or ("?", 0))[0]
        presents = "authorization" in headers or COOKIE in headers.get("cookie", "")
        if self.token and (presents or (path == "/login" and scope["method"] == "POST")):
            wait = self.throttle.locked(addr)
            if wait > 0:
                await _respond(
                    send_with_headers,
                    429,
                    {"detail": f"too many wrong tokens from {addr}; retry in {wait:.0f} s"},
                    [(b"retry-after", str(int(wait) + 1).encode())],
                )
                return
        if self.token and path not in PUBLIC_PATHS and not self._authorized(headers):
            if presents:
                self.throttle.failed(addr)
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

    def _edge_check(self, scope: dict, headers: dict[str, str]) -> tuple[int, str] | None:
        """(status, why) for a request refused before anything else, else None."""
        name = host_name(headers.get("host", ""))
        if not host_ok(name, self.allowed):
            return (
                400,
                f"Host {name[:100]!r} is not a name of this server (DNS rebinding?); "
                "add it to FITSCOPE_ALLOWED_HOSTS",
            )
        if scope["method"] in ORIGIN_CHECKED:
            origin = headers.get("origin")
            if origin is not None:
                parts = urllib.parse.urlsplit(origin.strip().lower())
                same = parts.netloc == headers.get("host", "").strip().lower()
                if not same and (parts.hostname or "") not in self.origin_hosts:
                    return 403, f"cross-origin write refused (Origin {origin[:100]!r})"
            elif headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
                return 403, "cross-site write refused (Sec-Fetch-Site)"
        qs: bytes = scope.get("query_string", b"")
        if b"%00" in qs or b"\x00" in qs:
            for k, v in urllib.parse.parse_qsl(qs.decode("latin-1"), keep_blank_values=True):
                if "\x00" in k or "\x00" in v:
                    return 400, f"query parameter {k[:50]!r} contains a NUL character"
        return None

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
