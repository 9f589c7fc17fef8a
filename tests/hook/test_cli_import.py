"""``fitscope import`` against a real server, and the progress bar on a real terminal."""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess
import sys

import pytest

from fitscope._progress import Progress
from tests.hook.test_importers import TRAINER_STATE
from tests.support import tb_events as tb
from tests.support.cli import cli


def test_import_trainer_state_then_again_stores_nothing_twice(server, tmp_path):
    state = tmp_path / "trainer_state.json"
    state.write_text(json.dumps(TRAINER_STATE))
    dry = cli("import", str(state), "--dry-run", "--url", server.url, tmp_path=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "train/loss" in dry.stdout and "nothing sent" in dry.stdout
    assert server.api("/api/v1/runs") == []

    r = cli("import", str(state), "--name", "bert-ft", "--url", server.url, tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    [run] = server.api("/api/v1/runs")
    assert run["name"] == "bert-ft" and run["project"] == "imported" and run["status"] == "finished"
    assert f"{server.url}/runs/{run['id']}" in r.stdout
    detail = server.api(f"/api/v1/runs/{run['id']}")
    assert detail["config"]["import"]["format"] == "hf" and detail["config"]["max_steps"] == 20

    def series(key: str) -> dict:
        return server.api(f"/api/v1/runs/{run['id']}/series", key=key)

    assert series("train/loss") == {**series("train/loss"), "steps": [5, 10, 15]}
    assert series("train/loss")["values"] == [2.25, 1.5, "NaN"]
    assert series("val/loss")["steps"] == [10] and series("val/accuracy")["values"] == [0.625]
    assert series("lr/0")["values"] == [4e-5, 3e-5, 2e-5]
    counts = {k["key"]: k["count"] for k in server.api(f"/api/v1/runs/{run['id']}/keys")}

    again = cli("import", str(state), "--name", "bert-ft", "--url", server.url, tmp_path=tmp_path)
    assert again.returncode == 0 and "nothing new stored" in again.stdout
    assert [x["id"] for x in server.api("/api/v1/runs")] == [run["id"]]
    assert {k["key"]: k["count"] for k in server.api(f"/api/v1/runs/{run['id']}/keys")} == counts


def test_import_tensorboard_folder_and_renames(server, tmp_path):
    logs = tmp_path / "lightning_logs"
    tb.write(
        logs / "version_0" / "events.out.tfevents.1",
        [
            tb.event(s, [tb.simple_value("train_loss", 1.0 / s), tb.simple_value("acc", 0.5)])
            for s in range(1, 51)
        ],
    )
    tb.write(
        logs / "version_1" / "events.out.tfevents.1",
        [tb.event(3, [tb.simple_value("val_loss", 0.7)])],
    )
    r = cli(
        "import",
        str(logs),
        "--project",
        "tb",
        "--map",
        "acc=val/accuracy",
        "--url",
        server.url,
        tmp_path=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    runs = {x["name"]: x for x in server.api("/api/v1/runs", project="tb")}
    assert set(runs) == {"lightning_logs/version_0", "lightning_logs/version_1"}
    v0 = {
        k["key"]: k["count"]
        for k in server.api(f"/api/v1/runs/{runs['lightning_logs/version_0']['id']}/keys")
    }
    assert v0 == {"train/loss": 50, "val/accuracy": 50}
    v1 = server.api(f"/api/v1/runs/{runs['lightning_logs/version_1']['id']}/series", key="val/loss")
    assert v1["steps"] == [3] and v1["values"] == [pytest.approx(0.7)]  # float32 in the file


def test_import_bad_input_is_one_clear_line(server, tmp_path):
    p = tmp_path / "h.csv"
    p.write_text("step,loss\n1,0.5\nx,0.4\n")
    r = cli("import", str(p), "--url", server.url, tmp_path=tmp_path)
    assert r.returncode == 1 and "row 2" in r.stderr and "Traceback" not in r.stderr
    bad_map = cli("import", str(p), "--map", "nonsense", "--url", server.url, tmp_path=tmp_path)
    assert bad_map.returncode == 2 and "OLD=NEW" in bad_map.stderr
    assert server.api("/api/v1/runs") == []


def test_progress_bar_draws_on_a_terminal(server, tmp_path):
    """Run the real command with a pseudo-terminal as its stderr, as a person would see it."""
    p = tmp_path / "long.csv"
    p.write_text("step,loss,lr\n" + "".join(f"{s},{1.0 / s},0.1\n" for s in range(1, 40001)))
    main, sub = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("FITSCOPE_URL", "FITSCOPE_TOKEN")}
    env.update(FITSCOPE_DIR=str(tmp_path / "client"), COLUMNS="100")
    proc = subprocess.Popen(
        [sys.executable, "-m", "fitscope.cli", "import", str(p), "--url", server.url],
        stdout=subprocess.PIPE,
        stderr=sub,
        env=env,
    )
    os.close(sub)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # the other end closed
            break
        if not data:
            break
        chunks.append(data)
    out, _ = proc.communicate(timeout=120)
    os.close(main)
    assert proc.returncode == 0
    screen = b"".join(chunks).decode(errors="replace")
    assert "importing long [" in screen and "100% 80,000/80,000 points" in screen
    assert "\r" in screen
    assert b"imported long: 80,000 points" in out
    # the same command into a pipe (a log file) draws nothing
    quiet = cli("import", str(p), "--url", server.url, tmp_path=tmp_path)
    assert "importing long [" not in quiet.stderr and "\r" not in quiet.stderr


def test_progress_bar_text():
    now = [0.0]
    buf = io.StringIO()
    bar = Progress(
        200, "exporting", unit="points", stream=buf, enabled=True, clock=lambda: now[0], width=80
    )
    with bar:
        now[0] = 1.0
        bar.advance(50)
        line = bar.line()
        assert line == f"exporting [{'#' * 10}{'.' * 29}]  25% 50/200 points ~3s left"
        assert len(line) == 79  # fits the terminal width, with room for the cursor
        now[0] = 1.05
        bar.advance(50)  # within REDRAW_EVERY of the last draw: not drawn
        now[0] = 2.0
        bar.advance(100)
    frames = buf.getvalue().split("\r\x1b[K")
    assert frames[1].startswith("exporting [....")
    assert " 25% 50/200" in frames[2] and not any(" 50% " in f for f in frames)
    assert frames[-1].rstrip("\n").endswith("100% 200/200 points") and buf.getvalue().endswith("\n")
    unknown = Progress(
        None, "exporting", unit="B", stream=io.StringIO(), enabled=True, clock=lambda: 2.0
    )
    unknown._start = 0.0
    unknown.set(3 * 1024 * 1024)
    assert unknown.line() == "exporting 3.0 MiB (1.5 MiB/s)"
    silent = io.StringIO()
    with Progress(10, "x", stream=silent) as quiet:  # StringIO is not a terminal
        quiet.advance(10)
    assert silent.getvalue() == ""
