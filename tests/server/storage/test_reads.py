"""Reading a 1,000,000-point series: every reduction keeps a one-step spike, and every
bucket's min/max is exact, whether it is cut from points or from block summaries."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

N = 1_000_000
SPIKE_AT = 612_345  # steps run 1..N
DIP_AT = 77_777
NAN_AT = 400_000


@pytest.fixture
def big(client):
    client.post("/api/v1/runs", json={"id": "big", "name": "1M"}).raise_for_status()
    rng = np.random.default_rng(1)
    steps = np.arange(1, N + 1)
    values = rng.normal(1.0, 0.01, N)
    values[SPIKE_AT - 1] = 50.0
    values[DIP_AT - 1] = -20.0
    wire = values.tolist()
    wire[NAN_AT - 1] = "NaN"
    values[NAN_AT - 1] = np.nan
    per = 100_000
    for i in range(0, N, per):
        body = {
            "batch_id": f"b{i}",
            "scalars": {
                "grad_norm/total": {
                    "steps": steps[i : i + per].tolist(),
                    "values": wire[i : i + per],
                }
            },
        }
        r = client.post(
            "/api/v1/runs/big/batches",
            content=orjson.dumps(body),
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 200, r.text
    return client, steps, values


def _check_buckets(got, steps, values, lo_step=1, hi_step=N):
    """Each returned bucket covers [its step, the next bucket's step); its min/max are exact."""
    bs = got["steps"] + [hi_step + 1]
    for i in range(len(got["steps"])):
        a = np.searchsorted(steps, bs[i])
        b = np.searchsorted(steps, bs[i + 1])
        chunk = values[a:b]
        ok = chunk[~np.isnan(chunk)]
        if np.isnan(chunk).any():
            assert got["values"][i] == "NaN"
        assert got["min"][i] == pytest.approx(ok.min()) and got["max"][i] == pytest.approx(ok.max())
    assert got["steps"][0] >= lo_step


def test_a_one_step_spike_is_in_every_reduction(big):
    client, steps, values = big
    # 2, 50, 100 reduce from block summaries, 1000 and 4096 from 64-point chunk summaries,
    # 10000 from the points themselves
    for max_points in (2, 50, 100, 1000, 4096, 10_000):
        r = client.get(
            "/api/v1/runs/big/series", params={"key": "grad_norm/total", "max_points": max_points}
        )
        assert r.status_code == 200
        assert "db;dur=" in r.headers["server-timing"]
        got = r.json()
        assert got["reduced"] is True and got["total"] == N and got["last_step"] == N
        assert 0 < len(got["steps"]) <= max_points
        assert max(got["max"]) == 50.0 and min(got["min"]) == -20.0
        i = int(np.searchsorted(got["steps"], SPIKE_AT, side="right")) - 1
        assert got["max"][i] == 50.0, max_points  # in the bucket holding its step
        assert "NaN" in got["values"]
        _check_buckets(got, steps, values)


def test_zoomed_range_is_full_detail_and_reducible(big):
    client, steps, values = big
    params = {"key": "grad_norm/total", "start": SPIKE_AT - 500, "end": SPIKE_AT + 499}
    got = client.get("/api/v1/runs/big/series", params=params).json()
    assert got["reduced"] is False and got["steps"] == list(range(SPIKE_AT - 500, SPIKE_AT + 500))
    assert got["last_step"] == SPIKE_AT + 499
    assert got["values"][500] == 50.0
    assert got["values"] == pytest.approx(values[SPIKE_AT - 501 : SPIKE_AT + 499].tolist())
    for max_points in (60, 2000):  # block and chunk summaries, cut by the range's edges
        wide = {
            "key": "grad_norm/total",
            "start": 100_001,
            "end": 900_000,
            "max_points": max_points,
        }
        red = client.get("/api/v1/runs/big/series", params=wide).json()
        assert red["reduced"] is True and red["total"] == 800_000 and red["last_step"] == 900_000
        assert red["steps"][0] == 100_001 and max(red["max"]) == 50.0
        _check_buckets(red, steps, values, lo_step=100_001, hi_step=900_000)


def test_full_series_and_export_round_trip(big):
    client, steps, values = big
    full = client.get("/api/v1/runs/big/series", params={"key": "grad_norm/total"}).json()
    assert full["total"] == N and full["steps"][-1] == N and full["values"][SPIKE_AT - 1] == 50.0
    with client.stream(
        "GET", "/api/v1/runs/big/export", params={"key": "grad_norm/total", "format": "csv"}
    ) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        lines = list(r.iter_lines())
    assert lines[0] == "key,step,value,time" and len(lines) == N + 1
    assert lines[SPIKE_AT] == f"grad_norm/total,{SPIKE_AT},50.0,"
    assert lines[NAN_AT] == f"grad_norm/total,{NAN_AT},NaN,"
    assert float(lines[5].split(",")[2]) == values[4]
