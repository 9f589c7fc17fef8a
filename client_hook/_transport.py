"""HTTP transport of the hook: the standard library only, injectable for tests."""

from __future__ import annotations

import http.client
import threading
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


class HTTPTransport:
    """A keep-alive connection to one server, reopened after any failure."""

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

    def _connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return cls(self._host, self._port, timeout=self._timeout)

    def request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> Response:
        with self._lock:
            if self._conn is None:
                self._conn = self._connect()
            try:
                self._conn.request(method, self._prefix + path, body=body, headers=headers)
                resp = self._conn.getresponse()
                return Response(resp.status, resp.read())
            except (OSError, http.client.HTTPException) as exc:
                self._conn.close()
                self._conn = None
                raise OSError(f"{type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
