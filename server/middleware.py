"""Request middleware: a size limit for every request, gzip request bodies, and the check of
the protocol version a client says it speaks.

The hook compresses its bodies (``Content-Encoding: gzip``); this decompresses
them before FastAPI parses JSON, never letting a body inflate past the limit.
"""

from __future__ import annotations

import json
from typing import Any

from fitscope.protocol import PROTOCOL_HEADER, PROTOCOL_VERSION

from .decode import BadBatch, read_body

SPOKEN_VERSIONS = frozenset((PROTOCOL_VERSION,))


class BodyMiddleware:
    def __init__(self, app: Any, max_body_bytes: int) -> None:
        self.app = app
        self.limit = max_body_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.limit:
            await _error(send, 413, f"body is larger than {self.limit} bytes")
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await _error(send, 413, f"body is larger than {self.limit} bytes")
                return
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        encoding = headers.get("content-encoding")
        if encoding:
            try:
                body = read_body(body, encoding, self.limit)
            except BadBatch as exc:
                await _error(send, exc.status, str(exc))
                return
            scope = dict(scope)
            scope["headers"] = [
                (k, v)
                for k, v in scope["headers"]
                if k.lower() not in (b"content-encoding", b"content-length")
            ]
            scope["headers"].append((b"content-length", str(len(body)).encode()))
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


class ProtocolMiddleware:
    """Refuse a request whose ``X-Fitscope-Protocol`` header names a version this server does not
    speak (400, before the body is read), so an old server and a new client (or the reverse)
    say so instead of failing on the first message that differs. A request without the header
    (curl, the browser, clients older than the header) is served as version 1."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.header = PROTOCOL_HEADER.lower().encode("latin-1")

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            sent = [v for k, v in scope["headers"] if k.lower() == self.header]
            problem = version_problem(sent[-1].decode("latin-1")) if sent else None
            if problem is not None:
                await _error(send, 400, problem)
                return
        await self.app(scope, receive, send)


def version_problem(sent: str) -> str | None:
    """Why a client that says it speaks protocol ``sent`` cannot be served; None if it can."""
    text = sent.strip()
    version = int(text) if text.isascii() and text.isdigit() and len(text) < 10 else None
    if version in SPOKEN_VERSIONS:
        return None
    ours = max(SPOKEN_VERSIONS)
    if version is None:
        return (
            f"{PROTOCOL_HEADER} must be a protocol version number, got {text[:40]!r}; "
            f"this server speaks version {ours}"
        )
    upgrade = "the fitscope server" if version > ours else "the fitscope client (pip package)"
    return (
        f"this client speaks fitscope protocol version {version}, this server speaks version "
        f"{ours}: upgrade {upgrade} so both speak the same version"
    )


async def _error(send: Any, status: int, detail: str) -> None:
    payload = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
