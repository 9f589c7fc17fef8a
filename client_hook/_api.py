"""A small client of the server's HTTP API for the ``fitscope`` command (standard library only).

It sends ``FITSCOPE_TOKEN`` as a bearer token, turns error answers into
:class:`ApiError` with the server's own explanation, and retries the answers
that mean "busy, try again" a few times.
"""

from __future__ import annotations

import http.client
import json
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

from ._messages import Message, headers
from ._sender import RETRYABLE
from ._transport import HTTPTransport, Transport
from .protocol import PROTOCOL_HEADER, PROTOCOL_VERSION, paths

STREAM_CHUNK = 64 * 1024


class ApiError(Exception):
    """The server answered with an error, or could not be reached (``status`` 0)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def error_detail(body: bytes) -> str:
    try:
        doc = json.loads(body)
    except ValueError:
        return body[:300].decode(errors="replace").strip()
    if isinstance(doc, dict) and "detail" in doc:
        d = doc["detail"]
        return d if isinstance(d, str) else json.dumps(d)[:300]
    return json.dumps(doc)[:300]


class ApiClient:
    """Requests to one server; ``transport`` is injectable like the hook's."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        transport: Transport | None = None,
        *,
        retries: int = 5,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 60.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.transport = transport or HTTPTransport(self.url, timeout=timeout)
        self.retries = retries
        self._sleep = sleep
        self._timeout = timeout

    def _auth(self) -> dict[str, str]:
        """The headers every request carries: the protocol version, and the token if any."""
        h = {PROTOCOL_HEADER: str(PROTOCOL_VERSION)}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        return h

    def _request(
        self, method: str, path: str, body: bytes | None, hdrs: dict[str, str]
    ) -> tuple[int, bytes]:
        delay = 0.25
        for attempt in range(self.retries + 1):
            try:
                resp = self.transport.request(method, path, body, hdrs)
            except OSError as exc:
                if attempt == self.retries:
                    raise ApiError(0, f"cannot reach the server at {self.url}: {exc}") from None
            else:
                if resp.status not in RETRYABLE or attempt == self.retries:
                    return resp.status, resp.body
            self._sleep(delay)
            delay = min(delay * 2, 4.0)
        raise AssertionError("unreachable")

    def get(self, path: str, **params: Any) -> Any:
        """GET ``path`` and decode its JSON answer; raise :class:`ApiError` on an error status."""
        query = {k: v for k, v in params.items() if v is not None}
        if query:
            path = f"{path}?{urllib.parse.urlencode(query)}"
        status, body = self._request(
            "GET", path, None, {"Accept": "application/json", **self._auth()}
        )
        if not 200 <= status < 300:
            raise ApiError(status, error_detail(body))
        return json.loads(body)

    def send(self, msg: Message) -> Any:
        """Send one protocol message (gzip JSON body, as the hook does) and decode the answer."""
        status, body = self._request(msg.method, msg.path, msg.body(), headers(self.token))
        if not 200 <= status < 300:
            raise ApiError(status, error_detail(body))
        return json.loads(body) if body else None

    def stream(self, path: str) -> tuple[int, int | None, Iterator[bytes]]:
        """GET ``path`` without reading the whole answer into memory.

        Returns ``(status, content_length or None, chunks)``; for an error status the
        chunks are the error body.  Uses its own connection, closed when the chunks end.
        """
        parts = urllib.parse.urlsplit(self.url)
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = cls(parts.hostname or "127.0.0.1", parts.port, timeout=self._timeout)
        try:
            conn.request("GET", parts.path.rstrip("/") + path, headers=self._auth())
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise ApiError(0, f"cannot reach the server at {self.url}: {exc}") from None
        length = resp.getheader("Content-Length")

        def chunks() -> Iterator[bytes]:
            try:
                while True:
                    chunk = resp.read(STREAM_CHUNK)
                    if not chunk:
                        return
                    yield chunk
            finally:
                conn.close()

        return resp.status, int(length) if length and length.isdigit() else None, chunks()

    def close(self) -> None:
        self.transport.close()

    def call(self, method: str, path: str, body: dict | None = None) -> Any:
        """A plain JSON request (PATCH, DELETE, ...); the decoded answer, None when empty."""
        hdrs = {"Accept": "application/json", **self._auth()}
        raw = None
        if body is not None:
            raw = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        status, answer = self._request(method, path, raw, hdrs)
        if not 200 <= status < 300:
            raise ApiError(status, error_detail(answer))
        return json.loads(answer) if answer else None

    def find_run(self, ref: str, newest: bool = False) -> dict:
        """The run named by ``ref``: its id, a unique id prefix (4+ characters), or a run name.

        A name several runs share is an error that lists their ids, unless ``newest``: then
        it is the newest of them (``on_ambiguous`` is told the others)."""
        ref = ref.strip()
        if ref and all(c.isalnum() or c in "_-" for c in ref) and len(ref) <= 64:
            try:
                return self.get(paths.run(ref))
            except ApiError as exc:
                if exc.status != 404:
                    raise
        # the server narrows the list (name, project, id or tag containing ref); newest first
        runs = self.get(paths.RUNS, q=ref, limit=10_000) if ref else []
        by_id = [r for r in runs if r["id"].startswith(ref)] if len(ref) >= 4 else []
        matches = by_id or [r for r in runs if r["name"] == ref]
        if not matches:
            raise ApiError(404, f"no run with id or name {ref!r} (see `fitscope runs`)")
        if len(matches) > 1:
            listed = ", ".join(
                f"{r['id'][:12]} ({r['project']}/{r['name']}, {str(r.get('created_at', ''))[:19]})"
                for r in matches[:5]
            )
            more = f" and {len(matches) - 5} more" if len(matches) > 5 else ""
            if not newest or by_id:
                raise ApiError(
                    409,
                    f"{ref!r} matches {len(matches)} runs: {listed}{more}; give more of the id",
                )
            self.on_ambiguous(
                f"{ref!r} matches {len(matches)} runs: {listed}{more}; using the newest, "
                f"{matches[0]['id'][:12]} (give an id to choose another)"
            )
        return self.get(paths.run(matches[0]["id"]))

    def on_ambiguous(self, note: str) -> None:
        """Told which run an ambiguous name was taken to mean."""
        print(f"fitscope: {note}", file=sys.stderr)
