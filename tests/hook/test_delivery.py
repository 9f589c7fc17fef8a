"""Delivery: a server killed mid-run, a server never up, alerts, heartbeats, bounded memory."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import torch
from torch import nn

import fitscope
from fitscope._settings import ClientSettings
from fitscope.testing import MockTransport, Response
from tests.support.hook import classification_data, mlp
from tests.support.servers import ServerProcess, free_port

TRAIN = textwrap.dedent("""
    import sys, time
    import torch
    from torch import nn
    import fitscope

    steps, delay = int(sys.argv[1]), float(sys.argv[2])
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    criterion = nn.CrossEntropyLoss()
    run = fitscope.watch(model, optimizer, criterion, project="faults", name="killed")
    print("RUN", run.id, flush=True)
    xv, yv = torch.randn(64, 10), torch.randint(0, 3, (64,))
    for step in range(1, steps + 1):
        x = torch.randn(16, 10)
        y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
        optimizer.zero_grad()
        criterion(model(x), y).backward()
        optimizer.step()
        if step % 50 == 0:
            model.eval()
            with torch.no_grad():
                criterion(model(xv), yv)
            model.train()
        print("STEP", step, flush=True)
        time.sleep(delay)
""")


def _expected(steps: int) -> dict[str, int]:
    per_step = ("train/loss", "grad_norm/total", "grad_norm/0", "grad_norm/2", "lr/0", "wd/0")
    evals = steps // 50
    return {
        **dict.fromkeys(per_step, steps),
        "param_norm/total": 1 + steps // 50,
        "val/loss": evals,
        "val/accuracy": evals,
        "val/confidence": evals,
        "val/labels": evals,
    }


def test_server_killed_mid_run_loses_and_duplicates_nothing(tmp_path):
    db = f"sqlite:///{tmp_path / 'kill.db'}"
    server = ServerProcess(db, tmp_path).start()
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    env = dict(os.environ, FITSCOPE_URL=server.url, FITSCOPE_DIR=str(tmp_path / "client"))
    steps = 300
    proc = subprocess.Popen(
        [sys.executable, str(script), str(steps), "0.01"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    try:
        run_id = _wait_for(
            lambda: next((ln.split()[1] for ln in lines if ln.startswith("RUN")), None)
        )
        _wait_for(lambda: _count(server, run_id, "train/loss") >= 40 or None)
        server.kill()  # SIGKILL, mid-run: whatever is in flight is lost on the server side
        killed_at = sum(ln.startswith("STEP") for ln in lines)
        _wait_for(lambda: sum(ln.startswith("STEP") for ln in lines) >= killed_at + 60 or None)
        server.start()  # same port, same database
        proc.wait(120)
        reader.join(10)
        stderr = proc.stderr.read() if proc.stderr else ""
        assert proc.returncode == 0, stderr
        assert killed_at < steps - 60, "the server must go down while the run is training"
        assert "cannot reach the server" in stderr
        assert "not delivered yet" not in stderr
        keys = {k["key"]: k["count"] for k in server.api(f"/api/v1/runs/{run_id}/keys")}
        for key, n in _expected(steps).items():
            assert keys.get(key) == n, (key, keys.get(key), n)
        for key in ("train/loss", "grad_norm/total", "lr/0"):
            got = server.api(f"/api/v1/runs/{run_id}/series", key=key)["steps"]
            assert got == list(range(1, steps + 1)), key
        assert server.api(f"/api/v1/runs/{run_id}")["status"] == "finished"
    finally:
        if proc.poll() is None:
            proc.kill()
        server.stop()


def _count(server: ServerProcess, run_id: str, key: str) -> int:
    try:
        keys = server.api(f"/api/v1/runs/{run_id}/keys")
    except Exception:
        return 0
    return next((k["count"] for k in keys if k["key"] == key), 0)  # type: ignore[union-attr]


def _wait_for(fn, timeout: float = 60.0):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_server_down_all_along_spools_and_fitscope_sync_delivers(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens here
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    env = dict(os.environ, FITSCOPE_URL=url, FITSCOPE_DIR=str(tmp_path / "client"))
    proc = subprocess.run(
        [sys.executable, str(script), "100", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    told = [ln for ln in proc.stderr.splitlines() if "fitscope sync" in ln]
    assert len(told) == 1 and "not delivered yet" in told[0], proc.stderr
    run_id = next(ln.split()[1] for ln in proc.stdout.splitlines() if ln.startswith("RUN"))
    assert any((tmp_path / "client" / "spool" / run_id).glob("*.json.gz"))

    server = ServerProcess(
        f"sqlite:///{tmp_path / 'late.db'}", tmp_path, port=int(url.rsplit(":", 1)[1])
    )
    server.start()
    try:
        sync = subprocess.run(
            [sys.executable, "-m", "fitscope.cli", "sync"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert sync.returncode == 0, sync.stdout + sync.stderr
        keys = {k["key"]: k["count"] for k in server.api(f"/api/v1/runs/{run_id}/keys")}
        for key, n in _expected(100).items():
            assert keys.get(key) == n, key
        assert server.api(f"/api/v1/runs/{run_id}")["status"] == "finished"
        assert not list((tmp_path / "client" / "spool").rglob("*.json.gz"))
    finally:
        server.stop()


def test_one_line_per_new_warning_or_critical_alert(app_server, capfd):
    from fitscope_server.models import AlertRow

    x, y = classification_data(128)
    model, crit = mlp(), nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = app_server.watch(model, opt, crit, interval=0.01)

    def train(n: int) -> None:
        for i in range(n):
            opt.zero_grad()
            crit(model(x[i * 8 : i * 8 + 8]), y[i * 8 : i * 8 + 8]).backward()
            opt.step()
            time.sleep(0.005)

    train(4)
    # the last step may still wait for the next flush: any delivered step will do
    _wait_for(lambda: app_server.counts(run.id).get("train/loss", 0) >= 1 or None)
    now = datetime.now(UTC)
    with app_server.client.app.state.db.session() as s:
        for rule, severity in (("exploding_gradients", "critical"), ("plateau", "info")):
            s.add(
                AlertRow(
                    run_id=run.id,
                    rule=rule,
                    severity=severity,
                    step=3,
                    onset_step=1,
                    message=f"{rule} test message",
                    remedy="lower the learning rate",
                    evidence="{}",
                    status="open",
                    created_at=now,
                    updated_at=now,
                )
            )
    train(12)  # several more batches, each answered with the same open alert
    run.finish()
    err = capfd.readouterr().err
    lines = [ln for ln in err.splitlines() if "exploding_gradients" in ln]
    assert len(lines) == 1, err
    assert "[critical]" in lines[0] and "step 3" in lines[0] and run.url in lines[0]
    assert "plateau" not in err  # info alerts stay in the dashboard


def answering(status: int, body: bytes) -> MockTransport:
    """Answers every request with ``status`` and ``body``."""
    return MockTransport(lambda request: Response(status, body))


def test_heartbeats_while_idle_and_none_spooled_while_offline(tmp_path):
    t = MockTransport()
    settings = ClientSettings(url="http://x.test", dir=tmp_path)
    run = fitscope.init(transport=t, settings=settings, interval=0.02, heartbeat_every=0.05)
    _wait_for(
        lambda: sum(r.path.endswith("/heartbeat") for r in t.requests) >= 3 or None, timeout=10
    )
    t.up = False
    time.sleep(0.5)  # heartbeats are due all the time now, but cannot be sent
    run.finish(timeout=0.5)
    spooled = [
        json.loads(gzip.decompress(p.read_bytes())) for p in (tmp_path / "spool").rglob("*.gz")
    ]
    assert spooled and not any(m["path"].endswith("/heartbeat") for m in spooled)
    assert any(m["path"].endswith("/finish") for m in spooled)


def test_memory_stays_bounded_when_the_sender_cannot_keep_up(tmp_path, capfd):
    from fitscope._decode import Decoder
    from fitscope._recorder import Recorder

    rec = Recorder(interval=0.0, max_blocks=5)
    for step in range(1, 51):
        rec.scalars.append(torch.tensor(float(step)))
        rec.rows.append((step, "step", 0, None, 1, 0, ()))
        rec.pack()
    assert len(rec._blocks) == 5 and rec.dropped_blocks == 45
    assert "dropped" in capfd.readouterr().err
    msgs = Decoder("r").messages(rec.take())
    assert msgs[0].payload["scalars"]["train/loss"]["steps"] == [46, 47, 48, 49, 50]


def test_sender_queue_spills_to_disk_while_offline(tmp_path):
    t = MockTransport()
    t.up = False
    run = fitscope.init(
        transport=t, settings=ClientSettings(url="http://x.test", dir=tmp_path), interval=0.01
    )
    most = 0
    for i in range(3000):
        run.log({"x": float(i)})
        if i % 100 == 0:
            time.sleep(0.02)
        with run.sender._lock:
            held = sum(e.msg is not None for e in run.sender._outbox) + len(run.sender._inbox)
        most = max(most, held)
    assert most <= run.sender._max_queue + 10  # the rest waits on disk, not in memory
    _wait_for(lambda: run.spool.count(run.id) > 0 or None, timeout=10)
    t.up = True
    run.finish(timeout=10)
    got = [
        v
        for r in t.requests
        for v in (r.json() or {}).get("scalars", {}).get("x", {}).get("values", [])
    ]
    assert sorted(got) == [float(i) for i in range(3000)]


@pytest.mark.parametrize(
    "status, body",
    [
        (200, b"<html>not json</html>"),
        (200, b"[1, 2, 3]"),
        (200, b'{"alerts": "nope"}'),
        (200, b'{"alerts": [null, 3, {"severity": "critical"}]}'),
        (500, b"oops"),
        (422, b'{"detail": "bad"}'),
    ],
)
def test_garbage_from_the_server_never_reaches_training(tmp_path, status, body):
    t = answering(status, body)
    x, y = classification_data(64)
    model, crit = mlp(), nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = fitscope.watch(
        model,
        opt,
        crit,
        transport=t,
        settings=ClientSettings(url="http://x.test", dir=tmp_path),
        interval=0.01,
    )
    for i in range(0, 64, 8):
        opt.zero_grad()
        crit(model(x[i : i + 8]), y[i : i + 8]).backward()
        opt.step()
        time.sleep(0.01)
    run.finish(timeout=1)
    assert run.step == 8
    if status < 500:
        assert any(r.path.endswith("/batches") for r in t.requests)
    else:  # retryable: kept in order on disk for later
        assert run.spool.count(run.id) > 0


def test_spool_path_and_sync_command_are_in_the_exit_line(tmp_path, capfd):
    t = MockTransport()
    t.up = False
    run = fitscope.init(
        name="offline", transport=t, settings=ClientSettings(url="http://x.test", dir=tmp_path)
    )
    run.log({"a": 1.0})
    run.finish(timeout=0.2)
    err = capfd.readouterr().err.splitlines()
    told = [ln for ln in err if "fitscope sync" in ln]
    assert len(told) == 1
    assert str(Path(tmp_path) / "spool" / run.id) in told[0] and "'offline'" in told[0]
