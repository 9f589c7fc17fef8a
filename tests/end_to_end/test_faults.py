"""Faults: locked or restarted databases, killed training processes, a server that is down,
an unusable spool. Every test is bounded in time and nothing may be lost or stored twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tests.support.hook import run_script
from tests.support.servers import ServerProcess, backends_terminated, free_port

N = 200


def _exactly_once(srv: ServerProcess, key: str = "x", n: int = N) -> None:
    runs = srv.api("/api/v1/runs")
    assert len(runs) == 1
    got = srv.api(f"/api/v1/runs/{runs[0]['id']}/series", key=key)
    assert got["steps"] == list(range(n)), got["steps"][:10]
    assert got["values"] == [float(i) for i in range(n)]


def test_locked_sqlite_answers_503_and_the_hook_retries(sqlite_url, tmp_path):
    srv = ServerProcess(sqlite_url, tmp_path, env={"FITSCOPE_DB_BUSY_TIMEOUT": "0.2"}).start()
    db_path = sqlite_url.removeprefix("sqlite:///")
    try:
        proc = run_script(
            "import sqlite3, time, fitscope\n"
            f"lock = sqlite3.connect({db_path!r}, isolation_level=None)\n"
            "run = fitscope.init(name='locked', interval=0.1)\n"
            "lock.execute('BEGIN EXCLUSIVE')\n"
            f"for i in range({N}):\n"
            "    run.log({'x': float(i)}, step=i)\n"
            "    time.sleep(0.005)\n"
            "time.sleep(1.5)\n"
            "lock.execute('COMMIT')\n"
            "run.finish()\n",
            tmp_path,
            srv.url,
        )
        assert proc.returncode == 0, proc.stderr
        assert "server answered 503" in proc.stderr  # the fault really happened
        _exactly_once(srv)
    finally:
        srv.stop()


def test_postgres_connections_killed_mid_run_lose_nothing(postgres_url, tmp_path):
    srv = ServerProcess(postgres_url, tmp_path).start()
    try:
        with backends_terminated(postgres_url, every=0.15) as killed:
            proc = run_script(
                "import time, fitscope\nrun = fitscope.init(name='pg', interval=0.05)\n"
                f"for i in range({N}):\n    run.log({{'x': float(i)}}, step=i)\n    time.sleep(0.01)\n"
                "run.finish()\n",
                tmp_path,
                srv.url,
            )
        assert proc.returncode == 0, proc.stderr
        assert sum(killed) > 0  # connections really were killed while it ran
        _exactly_once(srv)
    finally:
        srv.stop()


def test_killed_training_process_is_marked_crashed_with_its_data(sqlite_url, tmp_path):
    srv = ServerProcess(sqlite_url, tmp_path, env={"FITSCOPE_HEARTBEAT_TIMEOUT": "2"}).start()
    script = tmp_path / "train.py"
    script.write_text(
        "import time, fitscope\n"
        "run = fitscope.init(name='doomed', interval=0.1, heartbeat_every=0.3)\n"
        "i = 0\nwhile True:\n    run.log({'x': float(i)}, step=i)\n    i += 1\n    time.sleep(0.01)\n"
    )
    env = dict(os.environ, FITSCOPE_URL=srv.url, FITSCOPE_DIR=str(tmp_path / "client"))
    proc = subprocess.Popen([sys.executable, str(script)], env=env)
    try:
        deadline = time.monotonic() + 30
        count = 0
        while count < 50 and time.monotonic() < deadline:
            runs = srv.api("/api/v1/runs")
            if runs:
                keys = srv.api(f"/api/v1/runs/{runs[0]['id']}/keys")
                count = next((k["count"] for k in keys if k["key"] == "x"), 0)
            time.sleep(0.1)
        assert count >= 50
        assert srv.api("/api/v1/runs")[0]["status"] == "running"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        run_id = srv.api("/api/v1/runs")[0]["id"]
        stored = srv.api(f"/api/v1/runs/{run_id}/series", key="x")
        deadline = time.monotonic() + 20
        status = "running"
        while status == "running" and time.monotonic() < deadline:
            time.sleep(0.25)
            status = srv.api(f"/api/v1/runs/{run_id}")["status"]
        assert status == "crashed"
        assert stored["steps"] == list(
            range(len(stored["steps"]))
        )  # everything up to the last flush
        assert len(stored["steps"]) >= 50
    finally:
        if proc.poll() is None:
            proc.kill()
        srv.stop()


def test_server_down_for_the_whole_run_then_sync_delivers_everything(sqlite_url, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = run_script(
        "import fitscope\nrun = fitscope.init(name='offline')\n"
        f"for i in range({N}):\n    run.log({{'x': float(i)}}, step=i)\nrun.finish(timeout=1)\n",
        tmp_path,
        url,
    )
    assert proc.returncode == 0, proc.stderr
    assert "fitscope sync" in proc.stderr
    srv = ServerProcess(sqlite_url, tmp_path, port=port).start()
    try:
        env = dict(os.environ, FITSCOPE_URL=url, FITSCOPE_DIR=str(tmp_path / "client"))
        sync = subprocess.run(
            [sys.executable, "-m", "fitscope.cli", "sync"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert sync.returncode == 0, sync.stderr
        _exactly_once(srv)
        runs = srv.api("/api/v1/runs")
        assert runs[0]["status"] == "finished"
        again = subprocess.run(
            [sys.executable, "-m", "fitscope.cli", "sync"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert "nothing to sync" in again.stdout
        _exactly_once(srv)
    finally:
        srv.stop()


def test_the_next_run_delivers_what_an_earlier_one_spooled(sqlite_url, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    first = run_script(
        "import fitscope\nrun = fitscope.init(name='early')\n"
        f"for i in range({N}):\n    run.log({{'x': float(i)}}, step=i)\nrun.finish(timeout=1)\n",
        tmp_path,
        url,
    )
    assert first.returncode == 0
    srv = ServerProcess(sqlite_url, tmp_path, port=port).start()
    try:
        second = run_script(
            "import fitscope\nrun = fitscope.init(name='later')\nrun.log({'y': 1.0})\n"
            "run.finish()\n",
            tmp_path,
            url,
        )
        assert second.returncode == 0, second.stderr
        names = {r["name"]: r for r in srv.api("/api/v1/runs")}
        assert set(names) == {"early", "later"}
        got = srv.api(f"/api/v1/runs/{names['early']['id']}/series", key="x")
        assert got["steps"] == list(range(N))
    finally:
        srv.stop()


def test_unwritable_spool_and_no_server_training_goes_on_and_reports_the_loss(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where FITSCOPE_DIR should be")
    proc = run_script(
        "import torch, fitscope\n"
        "model = torch.nn.Linear(3, 2)\nopt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "crit = torch.nn.CrossEntropyLoss()\n"
        "run = fitscope.watch(model, opt, crit, name='nowhere')\n"
        "x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))\n"
        "for i in range(20):\n    opt.zero_grad(); crit(model(x), y).backward(); opt.step()\n"
        "for i in range(50):\n    run.log({'extra': 1.0}, step=100 + i)\n"
        "print('trained', model.weight.sum().item())\n"
        "run.finish(timeout=1)\n",
        tmp_path,
        f"http://127.0.0.1:{free_port()}",
        FITSCOPE_DIR=str(blocker),
    )
    assert proc.returncode == 0, proc.stderr
    assert "trained" in proc.stdout
    assert proc.stderr.count("cannot write the spool") == 1  # warned once
    assert "point(s) of run 'nowhere' were dropped" in proc.stderr
