"""Point storage in blocks, through the API on both backends: order, overwrites, merging."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import text

from fitscope_server.db import make_engine
from fitscope_server.storage import blocks


def _run(client, run_id="r"):
    client.post("/api/v1/runs", json={"id": run_id, "name": "pts"}).raise_for_status()


def _send(client, bid, key, steps, values, run_id="r"):
    r = client.post(
        f"/api/v1/runs/{run_id}/batches",
        json={"batch_id": bid, "scalars": {key: {"steps": steps, "values": values}}},
    )
    assert r.status_code == 200, r.text
    return r.json()


def _series(client, key, run_id="r", **params):
    r = client.get(f"/api/v1/runs/{run_id}/series", params={"key": key, **params})
    assert r.status_code == 200, r.text
    return r.json()


def _n_blocks(db_url):
    eng = make_engine(db_url)
    try:
        with eng.connect() as c:
            return c.execute(text("SELECT COUNT(*) FROM point_blocks")).scalar()
    finally:
        eng.dispose()


def test_many_small_batches_merge_into_few_blocks(client, db_url):
    _run(client)
    for i in range(120):
        _send(client, f"b{i}", "loss", [i * 25 + j for j in range(25)], [float(i)] * 25)
    got = _series(client, "loss")
    assert got["steps"] == list(range(3000)) and got["total"] == 3000
    assert got["values"][2995] == 119.0
    assert _n_blocks(db_url) == 2  # 3,000 points in blocks of at most 2,048
    keys = client.get("/api/v1/runs/r/keys").json()
    assert keys == [{"key": "loss", "kind": "scalar", "count": 3000}]


def test_out_of_order_and_rewritten_steps_keep_the_last_value(client):
    _run(client)
    _send(client, "a", "x", list(range(100, 5100)), [1.0] * 5000)  # three blocks
    _send(client, "b", "x", [5, 3, 4], [0.5, 0.3, 0.4])  # before everything
    _send(client, "c", "x", [100, 2600, 6000, 2600], [9.0, 7.0, 6.0, 8.0])  # overwrites
    _send(client, "d", "x", [50], ["NaN"])  # between
    got = _series(client, "x")
    assert got["total"] == 3 + 1 + 5000 + 1
    assert got["steps"][:5] == [3, 4, 5, 50, 100]
    assert got["values"][:5] == [0.3, 0.4, 0.5, "NaN", 9.0]
    at = dict(zip(got["steps"], got["values"], strict=True))
    assert at[2600] == 8.0 and at[2601] == 1.0 and at[6000] == 6.0
    assert got["steps"] == sorted(set(got["steps"]))
    keys = {k["key"]: k["count"] for k in client.get("/api/v1/runs/r/keys").json()}
    assert keys["x"] == 5005


def test_repeated_step_inside_one_batch_keeps_the_last(client):
    _run(client)
    _send(client, "a", "x", [1, 2, 1, 2, 1], [1.0, 2.0, 3.0, 4.0, 5.0])
    got = _series(client, "x")
    assert (got["steps"], got["values"]) == ([1, 2], [5.0, 4.0])


def test_ranges_after_and_unknown_keys(client):
    _run(client)
    _send(client, "a", "x", list(range(1, 10001)), list(map(float, range(1, 10001))))
    z = _series(client, "x", start=4000, end=4010)
    assert z["steps"] == list(range(4000, 4011)) and z["values"][0] == 4000.0
    assert _series(client, "x", after=9997)["steps"] == [9998, 9999, 10000]
    assert _series(client, "x", start=20000)["steps"] == []
    assert _series(client, "nope")["steps"] == []
    assert client.get("/api/v1/runs/zzz/series", params={"key": "x"}).status_code == 404


def test_a_key_keeps_its_kind(client):
    _run(client)
    r = client.post(
        "/api/v1/runs/r/batches",
        json={
            "batch_id": "h",
            "histograms": [{"key": "conf", "step": 1, "edges": [0, 1], "counts": [2]}],
        },
    )
    assert r.status_code == 200
    r = client.post(
        "/api/v1/runs/r/batches",
        json={"batch_id": "s", "scalars": {"conf": {"steps": [1], "values": [1.0]}}},
    )
    assert r.status_code == 422 and "histogram" in r.json()["detail"]


def test_histogram_filters(client):
    _run(client)
    hists = [
        {"key": "val/confidence", "step": s, "edges": [0, 0.5, 1], "counts": [s, 1]}
        for s in (10, 20, 30)
    ]
    client.post(
        "/api/v1/runs/r/batches", json={"batch_id": "h", "histograms": hists}
    ).raise_for_status()
    url = "/api/v1/runs/r/histograms"
    base = {"key": "val/confidence"}
    assert [h["step"] for h in client.get(url, params=base).json()["histograms"]] == [10, 20, 30]
    latest = client.get(url, params={**base, "latest": "true"}).json()["histograms"]
    assert [(h["step"], h["counts"]) for h in latest] == [(30, [30.0, 1.0])]
    one = client.get(url, params={**base, "step": 20}).json()["histograms"]
    assert [h["step"] for h in one] == [20]
    assert client.get(url, params={**base, "after": 10}).json()["histograms"][0]["step"] == 20


@pytest.mark.parametrize("n", [0, 1, 2047, 2048, 2049, 10_000])
def test_split_makes_even_blocks_of_at_most_the_block_size(n):
    steps = np.arange(n, dtype=np.int64)
    parts = blocks.split(steps, steps.astype(np.float64))
    assert sum(b.n for b in parts) == n
    assert all(0 < b.n <= blocks.BLOCK_POINTS for b in parts)
    if parts:
        assert max(b.n for b in parts) - min(b.n for b in parts) <= 1


def test_block_summary_ignores_nan_and_counts_it():
    v = np.array([1.0, np.nan, -np.inf, 3.0])
    row = blocks.Block(np.arange(4, dtype=np.int64), v).row()
    assert (row["vmin"], row["vmax"], row["vsum"], row["nfinite"], row["nnan"]) == (
        -np.inf,
        3.0,
        4.0,
        2,
        1,
    )
    all_nan = blocks.Block(np.arange(2, dtype=np.int64), np.array([np.nan, np.nan])).row()
    assert all_nan["vmin"] is None and all_nan["vmax"] is None
