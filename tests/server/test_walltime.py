"""Wall-clock time: the hook's ``time/wall`` series, ``with_time`` series answers, the
``time`` column of exports, and a run's start and end by the training process's clock."""

from __future__ import annotations

import time

import orjson
import pytest
import torch
from torch import nn

from fitscope_server.walltime import WallClock
from tests.support.hook import classification_data, mlp

T0 = 1_700_000_000.123456789  # a float64 that does not survive float32


def _run(client, run_id: str, started: float | None = T0) -> None:
    config = {"fitscope": {"started_at": started}} if started is not None else {}
    client.post(
        "/api/v1/runs", json={"id": run_id, "name": run_id, "config": config}
    ).raise_for_status()
    body = {
        "batch_id": f"{run_id}-1",
        "scalars": {
            "train/loss": {"steps": list(range(1, 41)), "values": [1.0 / s for s in range(1, 41)]},
            # one record per flush: steps 10, 20, 30 at 10 s, 20 s, 40 s after T0
            "time/wall": {"steps": [10, 20, 30], "values": [T0 + 10, T0 + 20, T0 + 40]},
        },
    }
    client.post(f"/api/v1/runs/{run_id}/batches", json=body).raise_for_status()


def test_clock_interpolates_and_extrapolates():
    import numpy as np

    c = WallClock(np.array([10, 20, 30]), np.array([100.0, 200.0, 400.0]))
    assert c.at([10, 15, 20, 25, 30]).tolist() == [100.0, 150.0, 200.0, 300.0, 400.0]
    assert c.at([0, 40]).tolist() == [0.0, 600.0]  # the nearest segment's rate
    one = WallClock(np.array([5]), np.array([7.0]))
    assert one.at([1, 5, 9]).tolist() == [7.0, 7.0, 7.0]


def test_series_with_time_and_exact_wall_values(client):
    _run(client, "t")
    wall = client.get("/api/v1/runs/t/series", params={"key": "time/wall"}).json()
    assert wall["values"] == [T0 + 10, T0 + 20, T0 + 40]  # float64, exactly
    s = client.get("/api/v1/runs/t/series", params={"key": "train/loss", "with_time": 1}).json()
    times = dict(zip(s["steps"], s["time"], strict=True))
    assert times[10] == pytest.approx(T0 + 10, abs=1e-6)
    assert times[25] == pytest.approx(T0 + 30, abs=1e-6)
    assert times[1] == pytest.approx(T0 + 1, abs=1e-6)  # before the first record: its rate
    red = client.get(
        "/api/v1/runs/t/series", params={"key": "train/loss", "with_time": 1, "max_points": 4}
    ).json()
    assert red["reduced"] and len(red["time"]) == len(red["steps"])
    assert "time" not in client.get("/api/v1/runs/t/series", params={"key": "train/loss"}).json()


def test_series_without_a_clock_says_null(client):
    client.post("/api/v1/runs", json={"id": "n", "name": "n"}).raise_for_status()
    client.post(
        "/api/v1/runs/n/batches",
        json={"batch_id": "x", "scalars": {"only": {"steps": [1, 2], "values": [1.0, 2.0]}}},
    ).raise_for_status()
    s = client.get("/api/v1/runs/n/series", params={"key": "only", "with_time": "true"}).json()
    assert s["time"] is None and s["values"] == [1.0, 2.0]


def test_export_has_a_time_column(client):
    _run(client, "e")
    csv = client.get("/api/v1/runs/e/export", params={"format": "csv"}).text.splitlines()
    assert csv[0] == "key,step,value,time"
    row = next(r for r in csv if r.startswith("train/loss,20,"))
    assert float(row.split(",")[3]) == pytest.approx(T0 + 20, abs=1e-6)
    lines = [orjson.loads(x) for x in client.get("/api/v1/runs/e/export").text.splitlines()]
    p = next(
        x for x in lines if x["type"] == "point" and x["key"] == "train/loss" and x["step"] == 30
    )
    assert p["time"] == pytest.approx(T0 + 40, abs=1e-6)


def test_run_start_and_end_come_from_the_training_clock(client):
    """A run delivered late (e.g. by `fitscope sync`) still shows when it really ran."""
    _run(client, "late")
    r = client.get("/api/v1/runs/late").json()
    started = r["started_at"].replace("Z", "+00:00")
    from datetime import datetime

    assert datetime.fromisoformat(started).timestamp() == pytest.approx(T0, abs=1e-3)
    last = datetime.fromisoformat(r["last_time"].replace("Z", "+00:00")).timestamp()
    assert last == pytest.approx(T0 + 40, abs=1e-3)
    # the server's own arrival time is now, long after the training clock's start
    created = datetime.fromisoformat(r["created_at"].replace("Z", "+00:00")).timestamp()
    assert created - T0 > 1e7
    _run(client, "plain", started=None)
    plain = client.get("/api/v1/runs/plain").json()
    assert plain["started_at"] == plain["created_at"]
    client.patch("/api/v1/runs/plain", json={"config": {"fitscope": {"started_at": "soon"}}})
    assert client.get("/api/v1/runs/plain").json()["started_at"] == plain["created_at"]


def test_hook_records_wall_time_once_per_flush(app_server):
    torch.manual_seed(0)
    x, y = classification_data(64)
    model, crit = mlp(), nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = time.time()
    run = app_server.watch(model, opt, crit, interval=0.05)
    for i in range(12):
        opt.zero_grad()
        crit(model(x[i * 4 : i * 4 + 4]), y[i * 4 : i * 4 + 4]).backward()
        opt.step()
        if i % 4 == 3:
            time.sleep(0.08)  # let a flush fall due
    run.finish()
    after = time.time()
    steps, values = app_server.series(run.id, "time/wall")
    loss_steps, _ = app_server.series(run.id, "train/loss")
    assert 1 <= len(steps) < len(loss_steps)  # per flush, not per step
    assert steps[-1] == loss_steps[-1] and set(steps) <= set(loss_steps)
    assert all(before <= v <= after for v in values) and values == sorted(values)
    detail = app_server.api(f"/api/v1/runs/{run.id}")
    assert before <= app_server.config(run.id)["fitscope"]["started_at"] <= values[0]
    assert detail["last_time"] is not None


def test_favicon_is_served(client):
    r = client.get("/favicon.ico")
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert r.content.startswith(b"<svg")
