"""HTTP transport of the hook: the standard library only, injectable for tests."""

from __future__ import annotations

import http.client
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes


class Transport(Protocol):
    def request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> Response:
        """Send one request; raise ``OSError`` when the server cannot be reached."""
        ...

    def close(self) -> None: ...


# the server closed a kept-alive connection while it was idle: the request never reached it
_STALE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, http.client.BadStatusLine)


class HTTPTransport:
    """A keep-alive connection to one server, reopened after any failure.

    A request on a connection the server has closed while it sat idle is sent once more
    on a fresh connection (silently: the server was never down).  ``deadline`` (a
    ``time.monotonic()`` value) caps every wait, connecting included, so a frozen server
    cannot hold a caller past it.
    """

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(
                f"fitscope: server url must be http(s)://host[:port], got {base_url!r}"
            )
        self._https = parsed.scheme == "https"
        self._host = parsed.hostname
        self._port = parsed.port
        self._prefix = parsed.path.rstrip("/")
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()
        self.deadline: float | None = None

    def _connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return cls(self._host, self._port, timeout=self._timeout)

    def _wait_limit(self) -> float:
        if self.deadline is None:
            return self._timeout
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no time left before the deadline")
        return min(self._timeout, left)

    def request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> Response:
        with self._lock:
            for attempt in (0, 1):
                try:
                    limit = self._wait_limit()
                except TimeoutError as exc:
                    raise OSError(f"TimeoutError: {exc}") from exc
                reused = self._conn is not None and self._conn.sock is not None
                if self._conn is None:
                    self._conn = self._connect()
                self._conn.timeout = limit
                if self._conn.sock is not None:
                    self._conn.sock.settimeout(limit)
                try:
                    self._conn.request(method, self._prefix + path, body=body, headers=headers)
                    resp = self._conn.getresponse()
                    return Response(resp.status, resp.read())
                except (OSError, http.client.HTTPException) as exc:
                    self._conn.close()
                    self._conn = None
                    if attempt == 0 and reused and isinstance(exc, _STALE):
                        continue  # a stale keep-alive connection: once more, on a fresh one
                    raise OSError(f"{type(exc).__name__}: {exc}") from exc
            raise AssertionError("unreachable")

    def close(self) -> None:
        """Close the connection; never waits for a request in flight (it ends by its deadline)."""
        if not self._lock.acquire(blocking=False):
            return
        try:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        finally:
            self._lock.release()
