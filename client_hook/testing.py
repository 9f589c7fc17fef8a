"""Test your training code with fitscope and no server: a transport you control.

``fitscope.init`` and ``fitscope.watch`` take a ``transport=``: the object the hook hands every
request to instead of opening a connection. ``MockTransport`` is that object for tests. It
calls your ``handler`` with each :class:`Request` and gives its :class:`Response` back to the
hook, and it keeps a record of every exchange::

    import fitscope
    from fitscope.testing import MockTransport

    transport = MockTransport()  # answers every request like a healthy server
    run = fitscope.init(transport=transport)
    for step in range(3):
        run.log({"train/loss": 1.0 / (step + 1)}, step=step)
    run.finish()
    assert transport.points("train/loss") == [0, 1, 2]

A handler can stand in for a server that refuses, fails or drops the connection::

    def handler(request):
        if request.path.endswith("/batches"):
            return Response(503, b"busy")  # the hook retries later
        return Response(200, b"{}")

    def unreachable(request):
        raise OSError("connection refused")  # as if no server were listening

Set ``transport.up = False`` to refuse every request (the server is down) without calling
the handler, and back to ``True`` to bring it up again. Requests the handler answers with an
error status are recorded; refused ones (an ``OSError``) are not. The handler is called under
a lock, one request at a time, from the hook's sender thread.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._transport import Response

__all__ = ["MockTransport", "Request", "Response", "accept"]

_GZIP = b"\x1f\x8b"


@dataclass(frozen=True)
class Request:
    """One request from the hook: its method, path (``/api/v1/...``), body and headers."""

    method: str
    path: str
    body: bytes | None
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The body as JSON (the hook gzips its bodies), or ``None`` without a body."""
        if not self.body:
            return None
        raw = gzip.decompress(self.body) if self.body[:2] == _GZIP else self.body
        return json.loads(raw)


def accept(request: Request) -> Response:
    """The default handler: every request answered ``200`` with no alerts."""
    return Response(200, b'{"alerts": []}')


class MockTransport:
    """A transport that hands every request to ``handler`` and records what it answered.

    ``history`` lists each answered ``(Request, Response)`` pair in order; ``requests`` and
    ``points(key)`` read it. ``up = False`` refuses every request with ``OSError``.
    """

    def __init__(self, handler: Callable[[Request], Response] = accept) -> None:
        self.handler = handler
        self.up = True
        self.history: list[tuple[Request, Response]] = []
        self._lock = threading.Lock()

    def request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> Response:
        req = Request(method, path, body, dict(headers))
        with self._lock:
            if not self.up:
                raise OSError("connection refused")
            resp = self.handler(req)
            self.history.append((req, resp))
            return resp

    def close(self) -> None:
        pass

    @property
    def requests(self) -> list[Request]:
        """Every request the handler answered, in the order the hook sent them."""
        with self._lock:
            return [req for req, _ in self.history]

    def points(self, key: str) -> list[int]:
        """The steps of ``key`` in the batches answered with a 2xx, in the order sent."""
        with self._lock:
            accepted = [
                req.json() or {}
                for req, resp in self.history
                if req.path.endswith("/batches") and 200 <= resp.status < 300
            ]
        return [s for p in accepted for s in p.get("scalars", {}).get(key, {}).get("steps", [])]
