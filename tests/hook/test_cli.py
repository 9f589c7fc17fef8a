"""The ``fitscope`` command against a real server: runs, alerts, export, sync, help."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
import sys
import textwrap

import pytest

from tests.support.cli import cli, make_run, plant_alerts
from tests.support.hook import run_script
from tests.support.servers import free_port

COMMANDS = ["serve", "db", "runs", "alerts", "export", "import", "sync", "delete", "rename"]


def test_help_describes_every_command(tmp_path):
    top = cli("--help", tmp_path=tmp_path)
    assert top.returncode == 0
    for name in [*COMMANDS, "demo", "FITSCOPE_TOKEN"]:
        assert name in top.stdout
    for name in COMMANDS:
        r = cli(name, "--help", tmp_path=tmp_path)
        assert r.returncode == 0 and "usage: fitscope " + name in r.stdout, r.stderr
    demo = cli("demo", "--help", tmp_path=tmp_path)
    assert demo.returncode == 0 and "--epochs" in demo.stdout


def test_runs_table_and_json(server, tmp_path):
    a = make_run(server.url, "first-run", project="alpha")
    b = make_run(server.url, "second-run", project="beta", finish=False)
    r = cli("runs", "--url", server.url, tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["ID", "PROJECT", "STATUS", "HEALTH", "STEP", "CREATED", "NAME"]
    # newest first, columns aligned under their headers
    assert lines[1].split()[0] == b and lines[1].split()[-1] == "second-run"
    assert lines[2].split()[0] == a and "finished" in lines[2]
    assert lines[1].index("running") == lines[0].index("STATUS")

    js = json.loads(cli("runs", "--json", "--url", server.url, tmp_path=tmp_path).stdout)
    assert [x["id"] for x in js] == [b, a]
    only = cli("runs", "--project", "alpha", tmp_path=tmp_path, FITSCOPE_URL=server.url)
    assert a in only.stdout and b not in only.stdout
    none = cli("runs", "--project", "nope", "--url", server.url, tmp_path=tmp_path)
    assert none.returncode == 0 and "no runs yet" in none.stdout


def test_alerts_readable_table(server, tmp_path):
    run_id = make_run(server.url, "diverging")
    plant_alerts(
        server.db_url,
        run_id,
        [
            {
                "rule": "plateau",
                "severity": "info",
                "step": 300,
                "message": "Loss flat for 200 steps.",
            },
            {
                "rule": "overfitting",
                "severity": "warning",
                "step": 900,
                "onset_step": 700,
                "message": "Validation loss rose 30% above its minimum while training loss kept falling. "
                * 2,
                "remedy": "Add weight decay or stop earlier.",
                "evidence": {
                    "series": ["val/loss", "train/loss"],
                    "start_step": 700,
                    "end_step": 900,
                },
            },
            {
                "rule": "divergence",
                "severity": "critical",
                "step": 1200,
                "message": "Training loss is 10x its minimum.",
                "remedy": "Lower the learning rate.",
            },
            {
                "rule": "non_finite",
                "severity": "critical",
                "step": 50,
                "message": "NaN loss.",
                "status": "resolved",
            },
        ],
    )
    r = cli("alerts", "diverging", "--url", server.url, tmp_path=tmp_path, COLUMNS="100")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"run diverging ({run_id}) in p: finished"
    assert lines[1].split() == ["SEVERITY", "RULE", "STEP", "STATUS", "MESSAGE"]
    rows = [ln.split()[:4] for ln in lines[2:] if ln and not ln.startswith(" ")]
    # open first, most severe first; a resolved one last
    assert [row[:2] for row in rows[:4]] == [
        ["critical", "divergence"],
        ["warning", "overfitting"],
        ["info", "plateau"],
        ["critical", "non_finite"],
    ]
    assert rows[1][2] == "700-900" and rows[3][3] == "resolved"
    assert all(len(ln) <= 100 for ln in lines)  # the message column wraps to the terminal
    assert any(ln.startswith(" ") and "training loss kept" in ln for ln in lines)
    assert "Lower the learning rate" not in r.stdout
    assert f"{server.url}/runs/{run_id}" in r.stdout

    v = cli("alerts", run_id[:8], "-v", "--url", server.url, tmp_path=tmp_path)
    assert "Try: Lower the learning rate." in v.stdout and '"start_step": 700' in v.stdout
    js = json.loads(cli("alerts", run_id, "--json", "--url", server.url, tmp_path=tmp_path).stdout)
    assert {a["rule"] for a in js} == {"plateau", "overfitting", "divergence", "non_finite"}

    assert (
        cli(
            "alerts", run_id, "--fail-on", "critical", "--url", server.url, tmp_path=tmp_path
        ).returncode
        == 2
    )
    quiet = make_run(server.url, "healthy")
    plant_alerts(
        server.db_url, quiet, [{"rule": "plateau", "severity": "info", "step": 5, "message": "m"}]
    )
    ok = cli("alerts", quiet, "--fail-on", "warning", "--url", server.url, tmp_path=tmp_path)
    assert ok.returncode == 0
    empty = make_run(server.url, "empty")
    e = cli("alerts", empty, "--url", server.url, tmp_path=tmp_path)
    assert "no alerts" in e.stdout


def test_run_references_and_errors_are_one_clear_line(server, tmp_path):
    old = make_run(server.url, "twin")
    new = make_run(server.url, "twin")
    # reading: a shared name means the newest of those runs, and says which ids match
    amb = cli("alerts", "twin", "--url", server.url, tmp_path=tmp_path)
    assert amb.returncode == 0, amb.stderr
    assert "matches 2 runs" in amb.stderr and old[:12] in amb.stderr and new[:12] in amb.stderr
    assert f"using the newest, {new[:12]}" in amb.stderr and f"({new})" in amb.stdout
    missing = cli("export", "no-such-run", "--url", server.url, tmp_path=tmp_path)
    assert missing.returncode == 1 and "no run with id or name 'no-such-run'" in missing.stderr
    down = cli("runs", "--url", f"http://127.0.0.1:{free_port()}", tmp_path=tmp_path)
    assert down.returncode == 1 and "cannot reach the server" in down.stderr
    assert "Traceback" not in down.stderr + missing.stderr + amb.stderr


SCALARS = {
    "train/loss": {
        "steps": list(range(1, 3001)),
        "values": [1.0 / s for s in range(1, 3000)] + ["NaN"],
    },
    "val/loss": {"steps": [1000, 2000, 3000], "values": [0.5, "Infinity", 0.25]},
}
HISTS = [
    {
        "key": "val/confidence",
        "step": 1000,
        "edges": [0.0, 0.5, 1.0],
        "counts": [3.0, 5.0],
        "correct": [1.0, 4.0],
        "conf_sum": [1.2, 3.9],
    }
]


def test_export_every_point_csv_jsonl_wide(server, tmp_path):
    run_id = make_run(server.url, "big", scalars=SCALARS, histograms=HISTS)
    out = tmp_path / "run.csv"
    r = cli("export", "big", "-o", str(out), "--url", server.url, tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["key", "step", "value", "time"]  # time: empty without time/wall
    loss = [(int(s), v) for k, s, v, _ in rows[1:] if k == "train/loss"]
    assert [s for s, _ in loss] == list(range(1, 3001))  # full resolution, not reduced
    assert float(loss[2][1]) == 1.0 / 3 and loss[-1][1] == "NaN"
    assert [v for k, _, v, _ in rows[1:] if k == "val/loss"] == ["0.5", "Infinity", "0.25"]
    assert not list(tmp_path.glob("*.part"))

    jl = cli("export", run_id, "--format", "jsonl", "--url", server.url, tmp_path=tmp_path)
    docs = [json.loads(line) for line in jl.stdout.splitlines()]
    assert sum(1 for d in docs if d.get("key") == "train/loss") == 3000
    # the server's run export: a run line, then points, histograms and alerts, each typed
    assert docs[0]["type"] == "run" and docs[0]["id"] == run_id
    assert {
        "type": "point",
        "key": "val/loss",
        "step": 2000,
        "value": "Infinity",
        "time": None,
    } in docs
    [hist] = [d for d in docs if d.get("key") == "val/confidence"]
    assert hist["counts"] == [3.0, 5.0] and hist["correct"] == [1.0, 4.0] and hist["step"] == 1000

    wide = cli(
        "export",
        run_id,
        "--wide",
        "--key",
        "val/loss",
        "--key",
        "train/loss",
        "--url",
        server.url,
        tmp_path=tmp_path,
    )
    table = list(csv.DictReader(io.StringIO(wide.stdout)))
    assert len(table) == 3000
    assert table[999] == {"step": "1000", "train/loss": repr(1.0 / 1000), "val/loss": "0.5"}
    assert table[0]["val/loss"] == ""
    bad = cli("export", run_id, "--key", "nope", "--url", server.url, tmp_path=tmp_path)
    assert bad.returncode == 1 and "no key(s) nope" in bad.stderr


def test_export_then_import_round_trip(server, tmp_path):
    make_run(server.url, "source", scalars=SCALARS, histograms=HISTS)
    out = tmp_path / "source.jsonl"
    assert (
        cli("export", "source", "-o", str(out), "--url", server.url, tmp_path=tmp_path).returncode
        == 0
    )
    r = cli("import", str(out), "--project", "copies", "--url", server.url, tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    [copy] = server.api("/api/v1/runs", project="copies")
    assert copy["name"] == "source" and copy["status"] == "finished"
    loss = server.api(f"/api/v1/runs/{copy['id']}/series", key="train/loss")
    assert loss["steps"] == SCALARS["train/loss"]["steps"]
    assert loss["values"][:2] == [1.0, 0.5] and loss["values"][-1] == "NaN"
    val = server.api(f"/api/v1/runs/{copy['id']}/series", key="val/loss")
    assert val["values"] == [0.5, "Infinity", 0.25]
    [h] = server.api(f"/api/v1/runs/{copy['id']}/histograms", key="val/confidence")["histograms"]
    assert h["counts"] == [3.0, 5.0] and h["conf_sum"] == [1.2, 3.9]


def test_sync_sends_what_was_spooled(server, tmp_path):
    code = textwrap.dedent("""
        import fitscope
        run = fitscope.init(project="offline", name="spooled")
        for i in range(1, 21):
            run.log({"train/loss": 1.0 / i}, step=i)
        run.finish(timeout=1)
    """)
    dead = f"http://127.0.0.1:{free_port()}"
    proc = run_script(code, tmp_path, dead)
    assert proc.returncode == 0 and "fitscope sync" in proc.stderr, proc.stderr
    assert server.api("/api/v1/runs") == []

    # meant for the dead address: --url alone leaves it, --redirect sends it here
    r = cli("sync", "--url", server.url, tmp_path=tmp_path)
    assert r.returncode == 1 and f"sync --url {dead}" in r.stderr, r.stderr
    assert server.api("/api/v1/runs") == []
    r = cli("sync", "--url", server.url, "--redirect", tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "0 rejected, 0 left" in r.stdout
    [run] = server.api("/api/v1/runs")
    assert run["name"] == "spooled" and run["status"] == "finished"
    assert server.api(f"/api/v1/runs/{run['id']}/series", key="train/loss")["steps"] == list(
        range(1, 21)
    )
    again = cli("sync", "--url", server.url, tmp_path=tmp_path)
    assert again.returncode == 0 and "nothing to sync" in again.stdout


def test_sync_with_the_server_down_keeps_everything(tmp_path):
    code = 'import fitscope\nrun = fitscope.init(name="x")\nrun.log({"a": 1.0})\nrun.finish(timeout=1)\n'
    dead = f"http://127.0.0.1:{free_port()}"
    assert run_script(code, tmp_path, dead).returncode == 0
    r = cli("sync", tmp_path=tmp_path, FITSCOPE_URL=dead)
    assert r.returncode == 1 and "left in" in r.stdout and "cannot reach" in r.stderr


def test_token_is_sent_as_bearer(tmp_path):
    """The client sends FITSCOPE_TOKEN on every request (a tiny recording server)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.headers.get("Authorization"))
            body = b"[]"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}"
        r = cli("runs", "--url", url, tmp_path=tmp_path, FITSCOPE_TOKEN="tok-123")
        assert r.returncode == 0, r.stderr
    finally:
        srv.shutdown()
    assert seen == ["Bearer tok-123"]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_prefers_the_server_export_endpoint(tmp_path, fmt):
    """Where the server has GET /runs/{id}/export, its bytes are written as they come."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    payload = ("key,step,value\nä/loss,1,0.5\n" * 20000).encode()  # multi-byte chars across chunks
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            asked.append(self.path)
            if self.path == "/api/v1/runs/r1":
                body = json.dumps(
                    {"id": "r1", "name": "n", "project": "p", "status": "finished"}
                ).encode()
            elif self.path == f"/api/v1/runs/r1/export?format={fmt}":
                body = payload
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        out = tmp_path / f"r1.{fmt}"
        url = f"http://127.0.0.1:{srv.server_address[1]}"
        r = cli("export", "r1", "-o", str(out), "--url", url, tmp_path=tmp_path)
        assert r.returncode == 0, r.stderr
    finally:
        srv.shutdown()
    assert out.read_bytes() == payload
    assert not any("/keys" in p or "/series" in p for p in asked)


def test_every_value_survives_export_as_a_float():
    # the CSV cell text round-trips through float() for finite values
    from fitscope._cli_read import _cell

    for x in (0.1, 1e-300, -2.5e17, 1 / 3):
        assert float(_cell(x)) == x
    assert _cell("NaN") == "NaN" and _cell(math.inf) == "Infinity"


def test_demo_streams_a_run(server, tmp_path):
    r = cli(
        "demo",
        "--epochs",
        "2",
        "--delay",
        "0",
        "--name",
        "d",
        "--url",
        server.url,
        tmp_path=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert "finished; see" in r.stdout
    [run] = server.api("/api/v1/runs")
    assert run["name"] == "d" and run["project"] == "demo" and run["status"] == "finished"
    keys = {k["key"]: k["count"] for k in server.api(f"/api/v1/runs/{run['id']}/keys")}
    assert keys["val/loss"] == 2 and keys["train/loss"] == 2 * 29  # 1800 samples / 64 per step


BLOCK_SERVER = textwrap.dedent("""
    import sys
    BLOCKED = ("fitscope_server", "fastapi", "sqlalchemy", "pydantic", "uvicorn", "httpx", "yaml", "numpy")

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is not installed in this training environment")
            return None

    sys.meta_path.insert(0, Blocker())
    from fitscope.cli import main
    main(sys.argv[1:])
""")


def test_client_commands_need_no_server_packages(server, tmp_path):
    """runs/alerts/export/import work in an environment with only the hook installed."""
    run_id = make_run(server.url, "light", scalars={"a": {"steps": [1, 2], "values": [1.0, 2.0]}})
    script = tmp_path / "client_only.py"
    script.write_text(BLOCK_SERVER)
    hist = tmp_path / "h.csv"
    hist.write_text("step,loss\n1,0.5\n2,0.25\n")
    env = {k: v for k, v in os.environ.items() if k not in ("FITSCOPE_URL", "FITSCOPE_TOKEN")}
    out = {}
    for args in (["runs"], ["alerts", run_id], ["export", run_id], ["import", str(hist)]):
        r = subprocess.run(
            [sys.executable, str(script), *args, "--url", server.url],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert r.returncode == 0, (args, r.stderr)
        out[args[0]] = r.stdout
    assert "light" in out["runs"] and "no alerts" in out["alerts"]
    assert out["export"].splitlines() == ["key,step,value,time", "a,1,1.0,", "a,2,2.0,"]
    assert {x["name"] for x in server.api("/api/v1/runs")} == {"light", "h"}
    blocked = subprocess.run(
        [sys.executable, str(script), "serve", "--port", "1"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert blocked.returncode != 0 and "pip install 'fitscope[server]'" in blocked.stderr


def test_server_commands_without_the_server(tmp_path):
    """serve and db are listed where only the hook is installed, and say how to get them."""
    script = tmp_path / "client_only.py"
    script.write_text(BLOCK_SERVER)
    run = [sys.executable, str(script)]
    top = subprocess.run([*run, "--help"], capture_output=True, text=True, timeout=60)
    assert top.returncode == 0, top.stderr
    assert (
        "start the dashboard and API" in top.stdout and "manage the database schema" in top.stdout
    )
    for args in (["serve", "--help"], ["db", "upgrade"]):
        r = subprocess.run([*run, *args], capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and "pip install 'fitscope[server]'" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr


def test_the_hook_never_imports_the_server():
    """The server's commands reach `fitscope` through entry points, not through imports."""
    import ast
    from importlib.metadata import entry_points
    from pathlib import Path

    import fitscope
    from fitscope.cli import COMMANDS, PROVIDERS

    for path in Path(fitscope.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.split(".")[0] == "fitscope_server" for n in names), path
    provided = {ep.name: ep.value for ep in entry_points(group=PROVIDERS)}
    assert set(provided) == {name for name, _, fill in COMMANDS if fill is None}
    assert all(v.startswith("fitscope_server.cli:") for v in provided.values())
