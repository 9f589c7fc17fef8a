"""Upgrading a database written at the first revision keeps its data (both backends)."""

from __future__ import annotations

import math
from datetime import datetime, timezone

from fastapi.testclient import TestClient
from sqlalchemy import text

from fitscope_server import Settings, create_app, migrate
from fitscope_server.db import make_engine

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
# 3,000 points (more than one block) with a gap, a NaN (NULL at revision 0001) and an Inf
STEPS = [*range(1, 2501), *range(3001, 3501)]


def _value(step: int) -> float | None:
    if step == 7:
        return None
    if step == 8:
        return math.inf
    return step / 10


def _write_at_first_revision(url: str) -> None:
    engine = make_engine(url)
    try:
        migrate.upgrade(engine, "0001_initial_schema")
        with engine.begin() as c:
            c.execute(
                text(
                    "INSERT INTO runs (id, project, name, status, config, created_at, updated_at,"
                    " heartbeat_at, finished_at) VALUES ('old', 'p', 'kept', 'finished',"
                    " '{\"lr\": 0.1}', :t, :t, :t, :t)"
                ),
                {"t": T0},
            )
            c.execute(
                text(
                    "INSERT INTO series (id, run_id, key, kind) VALUES"
                    " (1, 'old', 'train/loss', 'scalar'), (2, 'old', 'val/confidence', 'histogram')"
                )
            )
            c.execute(
                text("INSERT INTO points (series_id, step, value) VALUES (1, :s, :v)"),
                [{"s": s, "v": _value(s)} for s in STEPS],
            )
            c.execute(
                text(
                    "INSERT INTO histograms (series_id, step, data) VALUES"
                    ' (2, 100, \'{"edges": [0.0, 1.0], "counts": [5.0]}\')'
                )
            )
            c.execute(
                text(
                    "INSERT INTO batches (run_id, batch_id, received_at) VALUES ('old', 'b1', :t)"
                ),
                {"t": T0},
            )
            c.execute(
                text(
                    "INSERT INTO alerts (run_id, rule, severity, step, onset_step, message, remedy,"
                    " evidence, status, created_at, updated_at) VALUES ('old', 'plateau', 'info',"
                    " 2000, 1500, 'flat', 'lower lr', '{}', 'open', :t, :t)"
                ),
                {"t": T0},
            )
    finally:
        engine.dispose()


def test_upgrade_from_the_first_revision_keeps_every_point(db_url, tmp_path):
    _write_at_first_revision(db_url)
    app = create_app(Settings(db_url=db_url, dir=tmp_path))  # upgrades to head
    with TestClient(app) as client:
        run = client.get("/api/v1/runs/old").json()
        assert (run["name"], run["status"], run["config"]) == ("kept", "finished", {"lr": 0.1})
        # 0004_runs_table: the runs table's step is filled from the stored points
        assert (run["last_step"], run["tags"], run["notes"]) == (3500, [], "")
        cols = {"metric": ["max:train/loss", "min:train/loss"]}
        row = client.get("/api/v1/runs", params=cols).json()[0]
        assert row["metrics"] == {"max:train/loss": "Infinity", "min:train/loss": 0.1}
        assert row["health"] == "info"
        got = client.get("/api/v1/runs/old/series", params={"key": "train/loss"}).json()
        assert got["steps"] == STEPS
        want = ["NaN" if _value(s) is None else _value(s) for s in STEPS]
        want[STEPS.index(8)] = "Infinity"
        assert got["values"] == want
        keys = {k["key"]: k["count"] for k in client.get("/api/v1/runs/old/keys").json()}
        assert keys == {"train/loss": 3000, "val/confidence": 1}
        hist = client.get("/api/v1/runs/old/histograms", params={"key": "val/confidence"}).json()
        assert hist["histograms"] == [{"step": 100, "edges": [0.0, 1.0], "counts": [5.0]}]
        assert [a["rule"] for a in client.get("/api/v1/runs/old/alerts").json()] == ["plateau"]
        # the old batch id is still known: a resend is not stored twice
        again = {"batch_id": "b1", "scalars": {"train/loss": {"steps": [1], "values": [9.0]}}}
        assert client.post("/api/v1/runs/old/batches", json=again).json()["duplicate"] is True
        # and the upgraded series takes new points after the old ones
        new = {"batch_id": "b2", "scalars": {"train/loss": {"steps": [3501], "values": [1.0]}}}
        client.post("/api/v1/runs/old/batches", json=new).raise_for_status()
        tail = client.get("/api/v1/runs/old/series", params={"key": "train/loss", "after": 3499})
        assert tail.json()["steps"] == [3500, 3501]

    engine = make_engine(db_url)
    try:
        assert migrate.current_revision(engine) == migrate.head_revision()
        migrate.downgrade(engine, "0001_initial_schema")  # and back: the rows return
        with engine.connect() as c:
            rows = c.execute(text("SELECT step, value FROM points ORDER BY step")).all()
        assert [r[0] for r in rows] == [*STEPS, 3501]
        assert rows[6][1] is None and rows[7][1] == math.inf and rows[9][1] == 1.0
    finally:
        engine.dispose()
