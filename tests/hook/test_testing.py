"""``fitscope.testing.MockTransport``: a run logs through it with no server, and it answers,
refuses and records as its handler and ``up`` say."""

from __future__ import annotations

import gzip

import pytest

import fitscope
from fitscope._settings import ClientSettings
from fitscope.testing import MockTransport, Request, Response


def test_a_run_logs_through_it_with_no_server(tmp_path):
    transport = MockTransport()
    settings = ClientSettings(url="http://fitscope.test", dir=tmp_path)
    run = fitscope.init(transport=transport, settings=settings, interval=0.01)
    for step in range(3):
        run.log({"train/loss": 1.0 / (step + 1)}, step=step)
    run.finish(timeout=5)
    assert transport.points("train/loss") == [0, 1, 2]
    paths = [r.path for r in transport.requests]
    assert paths[0] == "/api/v1/runs" and paths[-1].endswith("/finish"), paths
    assert run.spool.count(run.id) == 0


def test_the_handler_answers_and_every_answer_is_recorded():
    seen: list[Request] = []

    def handler(request: Request) -> Response:
        seen.append(request)
        return Response(503 if request.path.endswith("/batches") else 200, b"{}")

    t = MockTransport(handler)
    body = gzip.compress(b'{"scalars": {"x": {"steps": [4], "values": [1.0]}}}')
    assert t.request("POST", "/api/v1/runs/r/batches", body, {"A": "b"}).status == 503
    assert t.request("GET", "/api/v1/health", None, {}).status == 200
    assert seen == t.requests and [r.method for r in t.requests] == ["POST", "GET"]
    assert t.requests[0].json() == {"scalars": {"x": {"steps": [4], "values": [1.0]}}}
    assert t.requests[0].headers == {"A": "b"} and t.requests[1].json() is None
    assert t.points("x") == []  # a 503 stored nothing
    assert [resp.status for _, resp in t.history] == [503, 200]


def test_a_server_that_is_down_or_drops_the_connection_raises_oserror():
    def unreachable(request: Request) -> Response:
        raise OSError("connection refused")

    t = MockTransport()
    t.up = False
    with pytest.raises(OSError):
        t.request("GET", "/api/v1/health", None, {})
    t.up = True
    assert t.request("GET", "/api/v1/health", None, {}).status == 200
    assert len(t.requests) == 1  # the refused request was never answered
    with pytest.raises(OSError):
        MockTransport(unreachable).request("GET", "/api/v1/health", None, {})
    assert Request("POST", "/p", b'{"plain": true}').json() == {"plain": True}
