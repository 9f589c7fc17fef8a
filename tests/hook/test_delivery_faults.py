"""The hook's path to the server under real faults: every flushed point is delivered exactly
once to the server it was meant for, or its loss is reported.

Real server processes on loopback ports, real training processes killed by PID, every
test bounded in time; the data is counted afterwards.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fitscope.testing import MockTransport, Request, Response
from tests.support.hook import run_script
from tests.support.servers import ServerProcess, free_port


def _env(tmp_path: Path, url: str | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FITSCOPE_")}
    env["FITSCOPE_DIR"] = str(tmp_path / "client")
    if url:
        env["FITSCOPE_URL"] = url
    env.update(extra)
    return env


def _sync(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fitscope.cli", "sync", "--no-progress", *args],
        env=_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _series(srv: ServerProcess, run_id: str, key: str = "x") -> list[int]:
    got = srv.api(f"/api/v1/runs/{run_id}/series", key=key)
    assert got["values"] == [float(s) for s in got["steps"]], key  # type: ignore[index]
    return got["steps"]  # type: ignore[index]


def _spooled(tmp_path: Path) -> list[dict]:
    return [
        json.loads(gzip.decompress(p.read_bytes()))
        for p in sorted((tmp_path / "client" / "spool").glob("*/*.json.gz"))
    ]


class Trainer:
    """A training script in its own process, printing each step it has logged."""

    def __init__(self, code: str, env: dict[str, str], tmp_path: Path) -> None:
        script = tmp_path / f"train_{time.monotonic_ns()}.py"
        script.write_text(code)
        self.proc = subprocess.Popen(
            [sys.executable, str(script)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[tuple[float, str]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), line.strip()))

    def wait_for(self, word: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for _, line in list(self.lines):
                if line.startswith(word):
                    return line
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.02)
        raise AssertionError(f"{word!r} never printed; stderr: {self.stderr()}")

    def steps(self) -> list[tuple[float, int]]:
        return [(t, int(ln.split()[1])) for t, ln in list(self.lines) if ln.startswith("STEP")]

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = 60.0) -> str:
        self.proc.wait(timeout)
        self._reader.join(10)
        return self.stderr()

    def stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return ""
        return self.proc.stderr.read()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


LOOP = """
import sys, time, fitscope
run = fitscope.init(name={name!r}, interval=0.1)
print("RUN", run.id, flush=True)
i = 0
while True:
    run.log({{"x": float(i)}}, step=i)
    print("STEP", i, flush=True)
    i += 1
    time.sleep(0.005)
"""


# -- 1. durable before acknowledged -------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_while_the_server_is_down_every_flushed_step_is_recoverable(
    sqlite_url, tmp_path, sig
):
    port = free_port()
    url = f"http://127.0.0.1:{port}"  # nothing listens here yet
    trainer = Trainer(LOOP.format(name="wal"), _env(tmp_path, url), tmp_path)
    try:
        run_id = trainer.wait_for("RUN").split()[1]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            steps = trainer.steps()
            if steps and steps[-1][1] >= 300 and steps[-1][0] - steps[0][0] >= 3.0:
                break
            time.sleep(0.05)
        killed_at = time.monotonic()
        os.kill(trainer.proc.pid, sig)
        trainer.proc.wait(10)
    finally:
        trainer.kill()
    # a step logged a second before the kill has been flushed (every 0.1 s) and written
    flushed = max(step for t, step in trainer.steps() if t <= killed_at - 1.0)
    assert flushed >= 100
    srv = ServerProcess(sqlite_url, tmp_path, port=port).start()
    try:
        sync = _sync(tmp_path)
        assert sync.returncode == 0, sync.stdout + sync.stderr
        got = _series(srv, run_id)
        assert got == list(range(len(got))), "every point once, in order, no gap"
        assert len(got) > flushed, (len(got), flushed)
    finally:
        srv.stop()


# -- 2. each spooled message goes only to its own server --------------------------------
def test_spool_is_delivered_only_to_its_own_server(sqlite_url, tmp_path):
    port_a = free_port()
    url_a = f"http://127.0.0.1:{port_a}"  # down while run A trains
    srv_b = ServerProcess(f"sqlite:///{tmp_path / 'b.db'}", tmp_path).start()
    try:
        first = run_script(
            "import fitscope\nrun = fitscope.init(name='for-a')\n"
            "for i in range(50):\n    run.log({'x': float(i)}, step=i)\n"
            "run.finish(timeout=0.5)\n",
            tmp_path,
            url_a,
            FITSCOPE_TOKEN="s3cret-token-value",
        )
        assert first.returncode == 0, first.stderr
        hint = [ln for ln in first.stderr.splitlines() if "fitscope sync" in ln]
        assert len(hint) == 1 and f"fitscope sync --url {url_a}" in hint[0], first.stderr
        spooled = _spooled(tmp_path)
        assert spooled and all(m["dest"]["url"] == url_a for m in spooled)
        token_id = hashlib.sha256(b"s3cret-token-value").hexdigest()[:12]
        assert all(m["dest"]["token"] == token_id for m in spooled)
        raw = b"".join(
            gzip.decompress(p.read_bytes())
            for p in (tmp_path / "client" / "spool").rglob("*.json.gz")
        )
        assert b"s3cret-token-value" not in raw  # the token itself is never written

        # another process, same FITSCOPE_DIR, another server: it must not take run A's data
        second = run_script(
            "import fitscope\nrun = fitscope.init(name='for-b')\n"
            "run.log({'y': 1.0}, step=0)\nrun.finish()\n",
            tmp_path,
            srv_b.url,
            FITSCOPE_TOKEN="s3cret-token-value",
        )
        assert second.returncode == 0, second.stderr
        assert [r["name"] for r in srv_b.api("/api/v1/runs")] == ["for-b"]  # type: ignore[index]

        only_b = _sync(tmp_path, "--url", srv_b.url)
        assert only_b.returncode == 1  # A's messages are left, and it says so
        assert f"fitscope sync --url {url_a}" in only_b.stderr, only_b.stderr
        assert [r["name"] for r in srv_b.api("/api/v1/runs")] == ["for-b"]  # type: ignore[index]

        unreachable = _sync(tmp_path)
        assert unreachable.returncode == 1 and url_a in unreachable.stderr, unreachable.stderr

        srv_a = ServerProcess(sqlite_url, tmp_path, port=port_a).start()
        try:
            # FITSCOPE_URL names B: sync still sends each message to its own server
            sync = _sync(tmp_path, FITSCOPE_URL=srv_b.url)
            assert sync.returncode == 0, sync.stdout + sync.stderr
            runs_a = srv_a.api("/api/v1/runs")
            assert [r["name"] for r in runs_a] == ["for-a"]  # type: ignore[index]
            assert _series(srv_a, runs_a[0]["id"]) == list(range(50))  # type: ignore[index]
            assert runs_a[0]["status"] == "finished"  # type: ignore[index]
            assert [r["name"] for r in srv_b.api("/api/v1/runs")] == ["for-b"]  # type: ignore[index]
        finally:
            srv_a.stop()
    finally:
        srv_b.stop()


# -- 5. the exit window ------------------------------------------------------------------
def _ready_then_wait(name: str, interval: float) -> str:
    """A run that logs steps 0-99, flushes, prints READY and waits for a line on stdin."""
    return f"""
import sys, time, fitscope
run = fitscope.init(name={name!r}, interval={interval})
for i in range(100):
    run.log({{"x": float(i)}}, step=i)
    time.sleep(0.005)
time.sleep(1.0)
print("READY", flush=True)
sys.stdin.readline()
"""


FREEZE = (
    _ready_then_wait("frozen", 0.05)
    + """
for i in range(100, 200):
    run.log({"x": float(i)}, step=i)
    time.sleep(0.005)
t = time.monotonic()
run.finish()
print("FINISH_S", time.monotonic() - t, flush=True)
"""
)


def test_finish_returns_in_its_window_against_a_frozen_server(sqlite_url, tmp_path):
    srv = ServerProcess(sqlite_url, tmp_path).start()
    assert srv.proc is not None
    trainer = Trainer(FREEZE, _env(tmp_path, srv.url, FITSCOPE_FINISH_TIMEOUT="2"), tmp_path)
    frozen = False
    try:
        trainer.wait_for("READY")
        os.kill(srv.proc.pid, signal.SIGSTOP)  # accepts connections, never answers
        frozen = True
        trainer.go()
        took = float(trainer.wait_for("FINISH_S", timeout=60).split()[1])
        stderr = trainer.finish()
        assert took <= 2 + 1, took
        assert "not delivered yet" in stderr
        os.kill(srv.proc.pid, signal.SIGCONT)
        frozen = False
        sync = _sync(tmp_path)
        assert sync.returncode == 0, sync.stdout + sync.stderr
        run = srv.api("/api/v1/runs")[0]  # type: ignore[index]
        assert _series(srv, run["id"]) == list(range(200))
        assert run["status"] == "finished"
    finally:
        if frozen:
            os.kill(srv.proc.pid, signal.SIGCONT)
        trainer.kill()
        srv.stop()


BACK = (
    _ready_then_wait("back", 0.5)
    + """
for i in range(100, 300):  # about 16 s without a server: the backoff outgrows the window
    run.log({"x": float(i)}, step=i)
    time.sleep(0.08)
print("FINISHING", flush=True)
run.finish()
"""
)


def test_a_server_back_during_the_exit_window_gets_everything(sqlite_url, tmp_path):
    srv = ServerProcess(sqlite_url, tmp_path).start()
    # a window long enough for a loaded machine to restart the server within it
    trainer = Trainer(BACK, _env(tmp_path, srv.url, FITSCOPE_FINISH_TIMEOUT="15"), tmp_path)
    try:
        trainer.wait_for("READY")
        srv.kill()
        trainer.go()
        trainer.wait_for("FINISHING", timeout=60)
        t0 = time.monotonic()
        srv.start()  # up a few seconds into the 15 s window
        assert time.monotonic() - t0 < 15, "the server must come back within the window"
        stderr = trainer.finish()
        assert trainer.proc.returncode == 0, stderr
        assert "cannot reach the server" in stderr  # the outage really happened
        assert "not delivered yet" not in stderr, stderr
        run = srv.api("/api/v1/runs")[0]  # type: ignore[index]
        assert _series(srv, run["id"]) == list(range(300))
        assert run["status"] == "finished"
    finally:
        trainer.kill()
        srv.stop()


# -- 6. a stale keep-alive connection ------------------------------------------------------
def test_a_pause_longer_than_the_keep_alive_raises_no_false_alarm(server, tmp_path):
    proc = run_script(
        "import time, fitscope\n"
        "run = fitscope.init(name='pause', interval=0.05, heartbeat_every=1000)\n"
        "for i in range(10):\n    run.log({'x': float(i)}, step=i)\n"
        "time.sleep(1.0)\n"
        "time.sleep(6.5)  # longer than the server's keep-alive (5 s): it closes the connection\n"
        "for i in range(10, 20):\n    run.log({'x': float(i)}, step=i)\n"
        "time.sleep(0.5)\nrun.finish()\n",
        tmp_path,
        server.url,
    )
    assert proc.returncode == 0, proc.stderr
    assert "cannot reach the server" not in proc.stderr, proc.stderr
    run = server.api("/api/v1/runs")[0]
    assert _series(server, run["id"]) == list(range(20))


# -- 7. an uncaught exception marks the run crashed at once ------------------------------
@pytest.mark.parametrize(
    "raise_line, exc_type",
    [
        ("raise ValueError('boom ' * 500)", "ValueError"),
        ("raise KeyboardInterrupt", "KeyboardInterrupt"),
    ],
)
def test_an_uncaught_exception_marks_the_run_crashed_right_away(
    server, tmp_path, raise_line, exc_type
):
    proc = run_script(
        "import sys, fitscope\n"
        "previous = sys.excepthook\n"
        "def mine(*a):\n    print('PREVIOUS HOOK RAN', file=sys.stderr)\n    previous(*a)\n"
        "sys.excepthook = mine\n"
        "run = fitscope.init(name='dies', interval=0.05)\n"
        "for i in range(20):\n    run.log({'x': float(i)}, step=i)\n"
        f"{raise_line}\n",
        tmp_path,
        server.url,
    )
    assert proc.returncode != 0
    assert "PREVIOUS HOOK RAN" in proc.stderr and exc_type in proc.stderr  # chained
    run = server.api("/api/v1/runs")[0]
    assert run["status"] == "crashed"  # not after a heartbeat timeout (60 s here)
    assert _series(server, run["id"]) == list(range(20))
    if "error" in run:  # a server that stores the error gives it back as sent
        assert run["error"]["type"] == exc_type


def test_an_exception_in_the_thread_that_made_the_run_marks_it_crashed(server, tmp_path):
    proc = run_script(
        "import threading, fitscope\n"
        "def train():\n"
        "    run = fitscope.init(name='thread', interval=0.05)\n"
        "    run.log({'x': 1.0}, step=0)\n"
        "    raise RuntimeError('in a thread')\n"
        "t = threading.Thread(target=train)\nt.start()\nt.join()\n",
        tmp_path,
        server.url,
    )
    assert "in a thread" in proc.stderr  # the default thread hook still printed it
    assert server.api("/api/v1/runs")[0]["status"] == "crashed"


# -- 3. keys the server would refuse never cost the rest of a batch ------------------------
LONG_PATHS = """
import torch, fitscope
from collections import OrderedDict
from torch import nn
torch.manual_seed(0)
m = nn.Linear(8, 8)
for _ in range(8):
    m = nn.Sequential(OrderedDict([("transformer_block_with_a_long_descriptive_name", m)]))
model = nn.Sequential(OrderedDict([("inp", nn.Linear(4, 8)), ("body", m), ("out", nn.Linear(8, 3))]))
opt = torch.optim.SGD(model.parameters(), lr=0.05)
crit = nn.CrossEntropyLoss()
run = fitscope.watch(model, opt, crit, name="keys", interval=0.05)
X, Y = torch.randn(32, 4), torch.randint(0, 3, (32,))
for step in range(60):
    opt.zero_grad()
    crit(model(X), Y).backward()
    opt.step()
    run.log({"val\\tf1": 0.5, "x" * 251: 0.5, "acc-\\udcff": 0.5, "ok/metric": float(step)})
run.finish()
"""


def test_long_module_paths_and_bad_log_keys_lose_nothing_else(server, tmp_path):
    proc = run_script(LONG_PATHS, tmp_path, server.url)
    assert proc.returncode == 0, proc.stderr
    run = server.api("/api/v1/runs")[0]
    keys = {k["key"]: k["count"] for k in server.api(f"/api/v1/runs/{run['id']}/keys")}
    assert keys["train/loss"] == 60 and keys["grad_norm/total"] == 60
    assert keys["ok/metric"] == 60
    long_ones = [k for k in keys if k.startswith("grad_norm/body.")]
    assert long_ones and all(len(k) <= 250 and "~" in k for k in long_ones)
    assert all(keys[k] == 60 for k in long_ones)
    told = [ln for ln in proc.stderr.splitlines() if "run.log: key" in ln]
    assert len(told) == 3, proc.stderr  # each bad key named once
    assert "rejected" not in proc.stderr and "refused" not in proc.stderr


def recording(answer: Callable[[int, str, str, dict], tuple[int | None, bytes]]) -> MockTransport:
    """A transport that accepts, refuses or fails requests as ``answer(n, method, path, payload)``
    says (``n`` counts the requests from 1; a status of ``None`` drops the connection)."""
    count = itertools.count(1)

    def handler(request: Request) -> Response:
        status, reply = answer(next(count), request.method, request.path, request.json() or {})
        if status is None:
            raise OSError("connection refused")
        return Response(status, reply)

    return MockTransport(handler)


def _init(tmp_path: Path, transport: MockTransport, **kw):  # noqa: ANN202
    import fitscope
    from fitscope._settings import ClientSettings

    settings = ClientSettings(url="http://x.test", dir=tmp_path / "client")
    return fitscope.init(transport=transport, settings=settings, interval=0.02, **kw)


def test_keys_a_2xx_answer_refuses_are_reported_once_and_sending_goes_on(tmp_path, capfd):
    t = recording(lambda n, m, p, b: (200, b'{"refused": {"bad key": "not allowed here"}}'))
    run = _init(tmp_path, t)
    for i in range(30):
        run.log({"x": float(i)}, step=i)
        time.sleep(0.005)
    run.finish(timeout=5)
    err = capfd.readouterr().err
    told = [ln for ln in err.splitlines() if "'bad key'" in ln]
    assert len(told) == 1 and "not allowed here" in told[0], err
    assert t.points("x") == list(range(30))


# -- 4. no poison: a message refused for good is set aside, the rest goes on -----------------
def test_a_batch_refused_for_good_is_set_aside_and_the_rest_delivered(tmp_path, capfd):
    def answer(n, method, path, payload):  # noqa: ANN001, ANN202
        steps = payload.get("scalars", {}).get("x", {}).get("steps", [])
        if 10 in steps:
            return 422, b'{"detail": "scalars.x: not today"}'
        return 200, b"{}"

    t = recording(answer)
    run = _init(tmp_path, t)
    for i in range(40):
        run.log({"x": float(i)}, step=i)
        time.sleep(0.005)
    run.finish(timeout=5)
    err = capfd.readouterr().err
    rejected = list((tmp_path / "client" / "spool" / "rejected" / run.id).glob("*.json.gz"))
    assert len(rejected) == 1
    reason = Path(str(rejected[0]) + ".reason.txt").read_text()
    assert "422" in reason and "not today" in reason
    kept = json.loads(gzip.decompress(rejected[0].read_bytes()))["payload"]
    lost = kept["scalars"]["x"]["steps"]
    assert sorted(t.points("x") + lost) == list(range(40))  # every point stored or set aside
    assert "refused" in err and str(tmp_path / "client" / "spool" / "rejected") in err, err
    assert run.spool.count(run.id) == 0


def test_sync_sets_poison_aside_and_delivers_every_other_run(sqlite_url, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    names = ["exp-\\udcff", "p" * 201, "healthy-1", "healthy-2"]  # oldest first: poison
    for name in names:
        proc = run_script(
            f"import fitscope\nrun = fitscope.init(name='{name}')\n"
            "for i in range(30):\n    run.log({'x': float(i)}, step=i)\n"
            "run.finish(timeout=0.3)\n",
            tmp_path,
            url,
        )
        assert proc.returncode == 0, proc.stderr
    srv = ServerProcess(sqlite_url, tmp_path, port=port).start()
    try:
        sync = _sync(tmp_path)
        assert "Traceback" not in sync.stderr, sync.stderr
        runs = {r["name"]: r for r in srv.api("/api/v1/runs")}  # type: ignore[union-attr]
        for name in ("healthy-1", "healthy-2"):
            assert _series(srv, runs[name]["id"]) == list(range(30))
            assert runs[name]["status"] == "finished"
        assert "p" * 201 not in runs
        rejected = tmp_path / "client" / "spool" / "rejected"
        assert list(rejected.rglob("*.reason.txt")), "the refused run is set aside with why"
        assert "refused" in sync.stderr + sync.stdout
        left = list((tmp_path / "client" / "spool").glob("*/*.json.gz"))
        # the name the database cannot store: refused (4xx) or, on an older server, kept
        assert (sync.returncode == 1) == bool(left), sync.stdout + sync.stderr
    finally:
        srv.stop()


# -- 8. in order: nothing overtakes an older message ----------------------------------------
def test_retries_never_let_a_newer_batch_overtake_an_older_one(tmp_path):
    def answer(n, method, path, payload):  # noqa: ANN001, ANN202
        if n % 5 == 0:
            return None, b""  # connection lost
        if n % 3 == 0:
            return 503, b"busy"
        return 200, b"{}"

    t = recording(answer)
    run = _init(tmp_path, t)
    run.sender._max_backoff = 0.05
    for i in range(300):
        run.log({"x": float(i)}, step=i)
        if i % 20 == 0:
            time.sleep(0.03)
    run.finish(timeout=30)
    got = t.points("x")
    assert got == list(range(300)), got[:40]  # each once, in step order


def test_sync_replays_oldest_first_across_runs(sqlite_url, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # the older run gets the id that sorts last
    for name, run_id in (("older", "f" * 32), ("newer", "0" * 32)):
        proc = run_script(
            "import fitscope, fitscope._run as r\n"
            f"r.new_id = lambda: {run_id!r}\n"
            f"run = fitscope.init(name={name!r}, interval=0.05)\n"
            "for i in range(30):\n    run.log({'x': float(i)}, step=i)\n"
            "run.finish(timeout=0.3)\n",
            tmp_path,
            url,
        )
        assert proc.returncode == 0, proc.stderr
    srv = ServerProcess(sqlite_url, tmp_path, port=port, args=["--log-level", "info"]).start()
    try:
        sync = _sync(tmp_path)
        assert sync.returncode == 0, sync.stdout + sync.stderr
        log = srv.log.read_text().splitlines()
        older = [i for i, ln in enumerate(log) if f"/runs/{'f' * 32}/" in ln]
        newer = [i for i, ln in enumerate(log) if f"/runs/{'0' * 32}/" in ln]
        assert older and newer and max(older) < min(newer)
    finally:
        srv.stop()


# -- 9. a full disk leaves no temporary files; concurrent syncs are safe ----------------------
FULL = """
import resource, signal, time
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1500, 1500))  # files over 1.5 kB cannot be written
import fitscope
run = fitscope.init(name="full", interval=0.05)
for i in range(400):
    run.log({f"k{j}": float(i) + j / 7 for j in range(10)}, step=i)
    if i % 40 == 0:  # some batches small enough to be written, most too big
        time.sleep(0.1)
run.finish(timeout=0.5)
"""


def test_an_unwritable_spool_file_leaves_no_tmp_and_every_loss_is_counted(sqlite_url, tmp_path):
    import re

    port = free_port()
    proc = run_script(FULL, tmp_path, f"http://127.0.0.1:{port}")
    assert proc.returncode == 0, proc.stderr
    assert "cannot write the spool" in proc.stderr, proc.stderr
    assert not list((tmp_path / "client").rglob("*.tmp")), "temporary files left behind"
    dropped = int(re.search(r"(\d+) point\(s\) of run 'full' were dropped", proc.stderr)[1])  # type: ignore[index]
    assert dropped > 0
    srv = ServerProcess(sqlite_url, tmp_path, port=port).start()
    try:
        _sync(tmp_path)
        runs = srv.api("/api/v1/runs")
        stored = 0
        if runs:
            keys = srv.api(f"/api/v1/runs/{runs[0]['id']}/keys")  # type: ignore[index]
            stored = sum(k["count"] for k in keys)  # type: ignore[union-attr]
        assert stored + dropped == 400 * 10  # each point stored, or counted as dropped
    finally:
        srv.stop()


def test_concurrent_syncs_deliver_every_entry_exactly_once(sqlite_url, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    for k in range(3):
        proc = run_script(
            f"import time, fitscope\nrun = fitscope.init(name='r{k}', interval=0.02)\n"
            "for i in range(60):\n    run.log({'x': float(i)}, step=i)\n"
            "    time.sleep(0.003)\n"
            "run.finish(timeout=0.3)\n",
            tmp_path,
            url,
        )
        assert proc.returncode == 0, proc.stderr
    spooled = _spooled(tmp_path)
    n_batches = sum(m["path"].endswith("/batches") for m in spooled)
    assert n_batches >= 6
    srv = ServerProcess(sqlite_url, tmp_path, port=port, args=["--log-level", "info"]).start()
    try:
        env = _env(tmp_path)
        syncs = [
            subprocess.Popen(
                [sys.executable, "-m", "fitscope.cli", "sync", "--no-progress"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]
        outs = [p.communicate(timeout=120) for p in syncs]
        for p, (out, err) in zip(syncs, outs, strict=True):
            assert "Traceback" not in err, err
            assert p.returncode == 0, out + err
        assert not list((tmp_path / "client" / "spool").glob("*/*.json.gz"))
        for r in srv.api("/api/v1/runs"):  # type: ignore[union-attr]
            assert _series(srv, r["id"]) == list(range(60))
        posts = [ln for ln in srv.log.read_text().splitlines() if "/batches HTTP" in ln]
        assert len(posts) == n_batches, (len(posts), n_batches)  # each entry sent once
    finally:
        srv.stop()


def test_layer_names_are_always_valid_keys_and_stay_distinct():
    from fitscope._facts import short_name
    from fitscope._messages import key_problem

    names = ["blk." * 80 + "fc1", "blk." * 80 + "fc2", "a\tb", "x\udcff", "enc.fc"]
    short = [short_name(n) for n in names]
    assert short[-1] == "enc.fc"  # an ordinary name is unchanged
    assert len(set(short)) == len(names)  # distinct names stay distinct
    assert short == [short_name(n) for n in names]  # deterministic
    for s in short:
        assert key_problem(f"param_norm/{s}") is None, s
