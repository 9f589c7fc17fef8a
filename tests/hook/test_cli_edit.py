"""``fitscope delete`` and ``fitscope rename`` against a real server, and the ``--help``
examples that name a run by a name two runs share."""

from __future__ import annotations

import httpx

from tests.support.cli import cli, make_run


def _get(url: str, run_id: str) -> httpx.Response:
    return httpx.get(f"{url}/api/v1/runs/{run_id}", timeout=10)


def test_rename_by_id_prefix_and_by_unique_name(server, tmp_path):
    a = make_run(server.url, "first")
    r = cli("rename", a[:6], "first-lr3e-3", "--url", server.url, tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "renamed first" in r.stdout and "'first-lr3e-3'" in r.stdout
    assert _get(server.url, a).json()["name"] == "first-lr3e-3"
    r = cli("rename", "first-lr3e-3", "final", "--url", server.url, tmp_path=tmp_path)
    assert r.returncode == 0 and _get(server.url, a).json()["name"] == "final"
    empty = cli("rename", a, "  ", "--url", server.url, tmp_path=tmp_path)
    assert empty.returncode == 1 and "empty" in empty.stderr
    long = cli("rename", a, "x" * 201, "--url", server.url, tmp_path=tmp_path)
    assert long.returncode == 1 and "name" in long.stderr and "Traceback" not in long.stderr
    assert _get(server.url, a).json()["name"] == "final"


def test_a_shared_name_is_refused_with_the_ids_listed(server, tmp_path):
    old = make_run(server.url, "twin", project="p1")
    new = make_run(server.url, "twin", project="p2")
    for args in (("delete", "twin", "--yes"), ("rename", "twin", "other")):
        r = cli(*args, "--url", server.url, tmp_path=tmp_path)
        assert r.returncode == 1, r.stdout
        assert "'twin' matches 2 runs" in r.stderr and "give more of the id" in r.stderr
        assert old[:12] in r.stderr and new[:12] in r.stderr
        assert "p1/twin" in r.stderr and "p2/twin" in r.stderr
    assert _get(server.url, old).status_code == 200 and _get(server.url, new).status_code == 200
    assert _get(server.url, new).json()["name"] == "twin"


def test_delete_asks_unless_yes_and_deletes_everything_of_the_run(server, tmp_path):
    scalars = {"train/loss": {"steps": [1, 2, 3], "values": [1.0, 0.5, 0.25]}}
    a = make_run(server.url, "keep", scalars=scalars)
    b = make_run(server.url, "goner", scalars=scalars)
    c = make_run(server.url, "goner-too")
    # no terminal to ask on and no --yes: nothing happens
    r = cli("delete", "goner", "--url", server.url, tmp_path=tmp_path)
    assert r.returncode == 1 and "--yes" in r.stderr
    assert _get(server.url, b).status_code == 200
    r = cli("delete", "goner", c[:8], "--yes", "--url", server.url, tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"deleted goner ({b[:12]})" in r.stdout and c[:12] in r.stdout
    assert _get(server.url, b).status_code == 404 and _get(server.url, c).status_code == 404
    assert (
        httpx.get(f"{server.url}/api/v1/runs/{b}/series", params={"key": "train/loss"}).status_code
        == 404
    )
    assert _get(server.url, a).status_code == 200
    again = cli("delete", b, "--yes", "--url", server.url, tmp_path=tmp_path)
    assert again.returncode == 1 and "no run with id or name" in again.stderr


def test_the_help_examples_work_with_two_demo_runs(server, tmp_path):
    make_run(server.url, "demo-mlp", project="demo")
    newest = make_run(server.url, "demo-mlp", project="demo")
    alerts = cli("alerts", "demo-mlp", "--url", server.url, tmp_path=tmp_path)
    assert alerts.returncode == 0, alerts.stderr
    assert f"({newest})" in alerts.stdout and "matches 2 runs" in alerts.stderr
    out = tmp_path / "run.csv"
    export = cli("export", "demo-mlp", "-o", str(out), "--url", server.url, tmp_path=tmp_path)
    assert export.returncode == 0, export.stderr
    found = cli("runs", "-q", "demo", "--url", server.url, tmp_path=tmp_path)
    assert found.returncode == 0 and found.stdout.count("demo-mlp") == 2
    assert cli("delete", "--help", tmp_path=tmp_path).stdout.count("--yes") >= 1
