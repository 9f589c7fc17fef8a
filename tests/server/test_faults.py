"""Server faults (issue 16): database disconnects answer 503, a locked SQLite answers 503
before the client's timeout, and a server outage does not mark live runs crashed."""

from __future__ import annotations

import sqlite3
import threading
import time

import httpx

from tests.support.servers import ServerProcess, backends_terminated

CLIENT_TIMEOUT = 10.0  # the hook's HTTP timeout


def test_postgres_dropping_connections_mid_write_answers_503_never_500(postgres_url, tmp_path):
    srv = ServerProcess(postgres_url, tmp_path).start()
    statuses: list[int] = []
    n_batches, per = 60, 4000
    try:
        httpx.post(f"{srv.url}/api/v1/runs", json={"id": "pg", "name": "pg"}).raise_for_status()
        with (
            backends_terminated(postgres_url, every=0.01, only_active=True) as killed,
            httpx.Client(base_url=srv.url, timeout=CLIENT_TIMEOUT) as c,
        ):
            for b in range(n_batches):
                steps = list(range(b * per, (b + 1) * per))
                body = {
                    "batch_id": f"b{b}",
                    "scalars": {f"k{j}": {"steps": steps, "values": [1.0] * per} for j in range(4)},
                }
                for _ in range(100):
                    r = c.post("/api/v1/runs/pg/batches", json=body)
                    statuses.append(r.status_code)
                    if r.status_code == 200:
                        break
                    assert r.status_code == 503 and r.headers.get("retry-after"), r.text
                    time.sleep(0.05)
        assert sum(killed) > 0  # backends really were terminated while writing
        assert 500 not in statuses
        for j in range(4):
            got = srv.api("/api/v1/runs/pg/series", key=f"k{j}")
            assert got["steps"] == list(range(n_batches * per))  # every point exactly once
    finally:
        srv.stop()
    assert "Traceback" not in srv.log.read_text()


def test_a_locked_sqlite_answers_503_before_the_clients_timeout(sqlite_url, tmp_path):
    srv = ServerProcess(sqlite_url, tmp_path).start()  # default settings
    try:
        httpx.post(f"{srv.url}/api/v1/runs", json={"id": "l", "name": "l"}).raise_for_status()
        lock = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        answers: list[httpx.Response | BaseException] = []

        def post(i: int) -> None:
            body = {"batch_id": f"b{i}", "scalars": {"x": {"steps": [i], "values": [1.0]}}}
            try:
                answers.append(
                    httpx.post(
                        f"{srv.url}/api/v1/runs/l/batches", json=body, timeout=CLIENT_TIMEOUT
                    )
                )
            except BaseException as exc:  # noqa: BLE001 - a client timeout is the failure
                answers.append(exc)

        threads = [threading.Thread(target=post, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        lock.execute("ROLLBACK")
        lock.close()
        for a in answers:
            assert isinstance(a, httpx.Response), f"no answer within {CLIENT_TIMEOUT} s: {a!r}"
            assert a.status_code == 503 and a.headers["retry-after"], a.text
        assert len(answers) == 3
        r = httpx.post(
            f"{srv.url}/api/v1/runs/l/batches",
            json={"batch_id": "after", "scalars": {"x": {"steps": [9], "values": [1.0]}}},
        )
        assert r.status_code == 200
    finally:
        srv.stop()


def test_a_server_outage_longer_than_the_heartbeat_timeout_does_not_crash_live_runs(
    sqlite_url, tmp_path
):
    env = {"FITSCOPE_HEARTBEAT_TIMEOUT": "2", "FITSCOPE_CRASH_CHECK_S": "0.2"}
    srv = ServerProcess(sqlite_url, tmp_path, env=env).start()
    try:
        httpx.post(f"{srv.url}/api/v1/runs", json={"id": "a", "name": "alive"}).raise_for_status()
        srv.stop()
        time.sleep(3.5)  # down for longer than the heartbeat timeout
        srv.start()
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:  # the sweeper runs every 0.2 s meanwhile
            assert srv.api("/api/v1/runs/a")["status"] == "running"
            time.sleep(0.2)
        # the hook's next heartbeat arrives within the timeout after the restart
        httpx.post(f"{srv.url}/api/v1/runs/a/heartbeat").raise_for_status()
        # a run that really stays silent is still marked crashed
        deadline = time.monotonic() + 10
        while srv.api("/api/v1/runs/a")["status"] != "crashed":
            assert time.monotonic() < deadline, "never marked crashed"
            time.sleep(0.2)
    finally:
        srv.stop()
