"""The background sender with an injected transport: order, retries, the spool, never raising."""

from __future__ import annotations

import time

from fitscope._messages import Message
from fitscope._sender import Sender, sync_spool
from fitscope._spool import Spool
from fitscope.testing import MockTransport, Request, Response


class FakeServer(MockTransport):
    """A server that stores batches by id and answers ``status``; ``up = False`` switches it off."""

    def __init__(self) -> None:
        super().__init__(self._store)
        self.status = 200
        self.stored: dict[str, dict] = {}

    @property
    def calls(self) -> int:
        return len(self.requests)

    def _store(self, request: Request) -> Response:
        payload = request.json()
        if self.status != 200:
            return Response(self.status, b'{"detail": "no"}')
        key = payload.get("batch_id") or f"{request.method} {request.path}"
        self.stored.setdefault(key, payload)
        return Response(200, b'{"alerts": []}')


def _batch(i: int) -> Message:
    m = Message("POST", "/api/v1/runs/r/batches", {}, kind="points")
    m.payload = {"batch_id": m.id, "scalars": {"x": {"steps": [i], "values": [float(i)]}}}
    return m


def _wait(cond, timeout=5.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_delivers_in_order(tmp_path):
    srv = FakeServer()
    s = Sender("r", srv, Spool(tmp_path), interval=0.01)
    s.start()
    msgs = [_batch(i) for i in range(20)]
    for m in msgs:
        s.submit(m)
    assert s.close(timeout=5) == 0
    assert [k for k in srv.stored] == [m.id for m in msgs]


def test_server_down_spools_then_replays_everything_once(tmp_path):
    srv = FakeServer()
    srv.up = False
    spool = Spool(tmp_path)
    s = Sender("r", srv, spool, interval=0.01, max_backoff=0.05)
    s.start()
    msgs = [_batch(i) for i in range(30)]
    for m in msgs:
        s.submit(m)
    _wait(lambda: spool.count("r") == 30)
    assert spool.count("r") == 30 and not srv.stored
    srv.up = True
    _wait(lambda: len(srv.stored) == 30)
    assert s.close(timeout=5) == 0
    assert list(srv.stored) == [m.id for m in msgs]


def test_unsent_messages_stay_in_the_spool_at_close_and_sync_sends_them(tmp_path):
    srv = FakeServer()
    srv.up = False
    spool = Spool(tmp_path)
    s = Sender("r", srv, spool, interval=0.01)
    s.start()
    for i in range(5):
        s.submit(_batch(i))
    assert s.close(timeout=0.5) == 5
    srv.up = True
    report = sync_spool(spool, lambda url: srv)
    assert (report.sent, report.rejected, report.left) == (5, 0, 0)
    assert len(srv.stored) == 5


def test_a_permanent_4xx_is_not_retried_forever(tmp_path, capsys):
    srv = FakeServer()
    srv.status = 422
    s = Sender("r", srv, Spool(tmp_path), interval=0.01)
    s.start()
    s.submit(_batch(1))
    assert s.close(timeout=2) == 0
    assert s.rejected == 1 and srv.calls == 1
    assert "rejected" in capsys.readouterr().err


def test_unwritable_spool_drops_and_counts_without_raising(tmp_path):
    srv = FakeServer()
    srv.up = False
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    s = Sender("r", srv, Spool(blocker / "spool"), interval=0.01)
    s.start()
    for i in range(3):
        s.submit(_batch(i))
    s.close(timeout=0.5)
    assert s.dropped == 3


def test_collects_one_at_a_time_and_queues_in_order(tmp_path):
    """finish() collects on the training thread while the writer thread may be collecting:
    the two must not decode side by side (the decoder carries state from block to block) nor
    queue their batches out of order."""
    import threading

    srv = FakeServer()
    inside, overlaps, taken = [0], [], []
    lock = threading.Lock()

    def collect() -> list[Message]:
        with lock:
            inside[0] += 1
            overlaps.append(inside[0] > 1)
            i = len(taken)
            taken.append(i)
        time.sleep(0.02)  # a slow decode
        with lock:
            inside[0] -= 1
        return [_batch(i)]

    s = Sender("r", srv, Spool(tmp_path), collect=collect, interval=0.001)
    s.start()
    threads = [threading.Thread(target=s.collect_now) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert s.close(timeout=5) == 0
    assert len(overlaps) >= 5 and not any(overlaps)
    steps = [p["scalars"]["x"]["steps"][0] for p in srv.stored.values()]
    assert steps == sorted(steps) and len(steps) == len(taken)
