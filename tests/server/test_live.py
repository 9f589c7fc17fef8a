"""Live push over server-sent events, against a real server on both backends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.support.live_server import Server
from tests.support.sse_client import SSEStream


@pytest.fixture
def live(db_url, tmp_path):
    srv = Server(db_url, tmp_path, crash_check_s=0.3).start()
    try:
        yield srv
    finally:
        srv.stop()


def _batch(bid: str, first: int, n: int = 5, hist_step: int | None = None) -> dict:
    body: dict = {
        "batch_id": bid,
        "scalars": {"train/loss": {"steps": list(range(first, first + n)), "values": [1.0] * n}},
    }
    if hist_step is not None:
        body["histograms"] = [
            {"key": "val/confidence", "step": hist_step, "edges": [0, 0.5, 1], "counts": [3, 4]}
        ]
    return body


def test_run_stream_pushes_points_histograms_status_and_deletion(live):
    live.post("/api/v1/runs", {"id": "r1", "name": "live"})
    ev = SSEStream(f"{live.url}/api/v1/runs/r1/events")
    try:
        assert ev.status == 200 and ev.headers["content-type"].startswith("text/event-stream")
        first = ev.next()
        assert first.event == "run" and first.data["status"] == "running"
        live.post(
            "/api/v1/runs/r1/batches",
            {
                "batch_id": "b1",
                "scalars": {"x": {"steps": [1, 2, 3], "values": [0.5, "NaN", "-Infinity"]}},
                "histograms": [
                    {"key": "val/confidence", "step": 3, "edges": [0, 1], "counts": [7]}
                ],
            },
        )
        pts = ev.next("points")
        assert pts.data == {
            "series": {"x": {"steps": [1, 2, 3], "values": [0.5, "NaN", "-Infinity"]}}
        }
        assert int(pts.id) > int(first.id)
        hist = ev.next("histograms")
        assert hist.data == {
            "key": "val/confidence",
            "step": 3,
            "edges": [0.0, 1.0],
            "counts": [7.0],
        }
        live.post("/api/v1/runs/r1/finish", {})
        assert ev.next("run").data["status"] == "finished"
        assert httpx.delete(f"{live.url}/api/v1/runs/r1").status_code == 204
        assert ev.next("deleted").data == {"id": "r1"}
    finally:
        ev.close()


def test_a_stream_resumes_after_last_event_id(live):
    live.post("/api/v1/runs", {"id": "r2", "name": "resume"})
    ev = SSEStream(f"{live.url}/api/v1/runs/r2/events")
    try:
        ev.next("run")
        live.post("/api/v1/runs/r2/batches", _batch("a", 1))
        got = ev.next("points")
    finally:
        ev.close()
    live.post("/api/v1/runs/r2/batches", _batch("b", 100))  # while disconnected
    again = SSEStream(f"{live.url}/api/v1/runs/r2/events", headers={"Last-Event-ID": got.id})
    replay = SSEStream(f"{live.url}/api/v1/runs/r2/events?since=0")
    try:
        assert again.next("points").data["series"]["train/loss"]["steps"][0] == 100
        seen = replay.next("points").data["series"]["train/loss"]["steps"]
        assert seen[0] == 1 and 100 in seen
    finally:
        again.close()
        replay.close()
    assert httpx.get(f"{live.url}/api/v1/runs/nope/events").status_code == 404


def test_run_list_stream_shows_new_finished_and_deleted_runs(live):
    ev = SSEStream(f"{live.url}/api/v1/events/runs")
    try:
        live.post("/api/v1/runs", {"id": "r3", "name": "listed", "project": "p"})
        new = ev.until("runs", lambda d: any(r["id"] == "r3" for r in d))
        assert {r["id"]: r["status"] for r in new.data}["r3"] == "running"
        live.post("/api/v1/runs/r3/finish", {})
        ev.until("runs", lambda d: any(r["id"] == "r3" and r["status"] == "finished" for r in d))
        httpx.delete(f"{live.url}/api/v1/runs/r3").raise_for_status()
        assert ev.next("deleted").data == {"id": "r3"}
    finally:
        ev.close()


def test_run_list_stream_shows_renames_and_tags(live):
    ev = SSEStream(f"{live.url}/api/v1/events/runs")
    try:
        live.post("/api/v1/runs", {"id": "r4", "name": "before", "project": "p", "tags": ["a"]})
        first = ev.until("runs", lambda d: any(r["id"] == "r4" for r in d))
        assert {r["id"]: r["tags"] for r in first.data}["r4"] == ["a"]
        patch = {"name": "after", "tags": ["a", "b"], "notes": "n"}
        httpx.patch(f"{live.url}/api/v1/runs/r4", json=patch).raise_for_status()
        ev.until(
            "runs",
            lambda d: any(
                (r["id"], r["name"], r["tags"], r["notes"]) == ("r4", "after", ["a", "b"], "n")
                for r in d
            ),
        )
    finally:
        ev.close()


FOREVER = """
import time, torch, fitscope
model = torch.nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.01)
crit = torch.nn.MSELoss()
run = fitscope.watch(model, opt, crit, project="crash", name="killed", interval=0.1,
                     heartbeat_every=0.2)
print(run.id, flush=True)
x, y = torch.randn(8, 4), torch.randn(8, 1)
while True:
    opt.zero_grad(); crit(model(x), y).backward(); opt.step()
    time.sleep(0.02)
"""


def test_a_killed_training_process_becomes_crashed_live(sqlite_url, tmp_path):
    srv = Server(sqlite_url, tmp_path, heartbeat_timeout=1.5, crash_check_s=0.2).start()
    script = tmp_path / "forever.py"
    script.write_text(FOREVER)
    env = dict(os.environ, FITSCOPE_URL=srv.url, FITSCOPE_DIR=str(tmp_path / "client"))
    proc = subprocess.Popen(
        [sys.executable, str(script)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        run_id = proc.stdout.readline().strip()
        runs_ev = SSEStream(f"{srv.url}/api/v1/events/runs?since=0")
        runs_ev.until("runs", lambda d: any(r["id"] == run_id for r in d))
        run_ev = SSEStream(f"{srv.url}/api/v1/runs/{run_id}/events")
        assert run_ev.next("run").data["status"] == "running"
        run_ev.next("points")  # it is alive and streaming
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        crashed = runs_ev.until(
            "runs", lambda d: any(r["id"] == run_id and r["status"] == "crashed" for r in d)
        )
        assert crashed.id is not None
        assert run_ev.until("run", lambda d: d["status"] == "crashed")
        assert srv.api(f"/api/v1/runs/{run_id}")["status"] == "crashed"
        runs_ev.close()
        run_ev.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        srv.stop()


def test_events_reach_streams_on_another_worker(db_url, tmp_path):
    """Two server processes: an event stored through one reaches a stream held by the other
    (PostgreSQL: LISTEN/NOTIFY; SQLite: the poll fallback)."""
    srv = Server(db_url, tmp_path, workers=2).start()
    streams: list[SSEStream] = []
    try:
        srv.post("/api/v1/runs", {"id": "w", "name": "workers"})
        ev = SSEStream(f"{srv.url}/api/v1/runs/w/events")
        streams.append(ev)
        holder = ev.headers["x-fitscope-worker"]
        ev.next("run")
        for i in range(200):
            r = srv.post("/api/v1/runs/w/batches", _batch(f"b{i}", 10 * i + 1, n=1), fresh=True)
            if r.headers["x-fitscope-worker"] != holder:
                break
        else:
            pytest.fail("every request went to the worker holding the stream")
        want = 10 * i + 1
        got = ev.until("points", lambda d: want in d["series"]["train/loss"]["steps"])
        assert got.data["series"]["train/loss"]["values"] == [1.0] * len(
            got.data["series"]["train/loss"]["steps"]
        )
    finally:
        for s in streams:
            s.close()
        srv.stop()
    log = srv.log.read_text()
    assert "Traceback" not in log, log[-3000:]


def test_open_streams_are_capped_with_a_503(sqlite_url, tmp_path):
    srv = Server(sqlite_url, tmp_path, max_streams=2).start()
    streams: list[SSEStream] = []
    try:
        srv.post("/api/v1/runs", {"id": "c", "name": "cap"})
        for url in (f"{srv.url}/api/v1/runs/c/events", f"{srv.url}/api/v1/events/runs"):
            streams.append(SSEStream(url))
            assert streams[-1].status == 200
        streams[0].next("run")
        r = httpx.get(f"{srv.url}/api/v1/runs/c/events", timeout=10)
        assert r.status_code == 503 and int(r.headers["retry-after"]) > 0
        assert "FITSCOPE_MAX_STREAMS" in r.json()["detail"]
        assert httpx.get(f"{srv.url}/api/v1/runs", timeout=10).status_code == 200
        streams.pop(0).close()
        # the server notices a closed stream when its next write fails: at the latest the
        # keep-alive comment, every KEEPALIVE_S (15 s)
        for _ in range(250):
            probe = SSEStream(f"{srv.url}/api/v1/runs/c/events")
            if probe.status == 200:
                streams.append(probe)
                break
            probe.close()
            time.sleep(0.1)
        else:
            pytest.fail("a closed stream's place was never freed")
    finally:
        for s in streams:
            s.close()
        srv.stop()


def test_a_write_wakes_only_the_streams_that_show_it():
    """One change feed per process: a run's points wake that run's streams; the run-list
    streams wake only for run-level changes (created, status, deleted)."""
    import asyncio

    from fitscope_server.live import ALL, Hub
    from fitscope_server.storage import events

    async def main() -> None:
        hub = Hub()
        hub.bind(asyncio.get_running_loop())
        with hub.subscribe("a") as a, hub.subscribe("b") as b, hub.subscribe(ALL) as lst:
            changed: set[str] = set()
            for kind in ("points", "alerts", "histograms"):
                changed |= _changed_by(events, "a", kind)
            hub.wake(changed)
            await asyncio.sleep(0.05)
            assert a.is_set() and not b.is_set() and not lst.is_set()
            a.clear()
            hub.wake(_changed_by(events, "b", "run"))
            await asyncio.sleep(0.05)
            assert b.is_set() and lst.is_set() and not a.is_set()

    asyncio.run(main())


def _changed_by(events, run_id: str, kind: str) -> set[str]:  # type: ignore[no-untyped-def]
    """The wake-up topics a transaction recording one event of ``kind`` hands to the hub."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from fitscope_server.models import Base

    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        events.record(s, run_id, kind)
        return set(s.info["fitscope_changed"])
