"""Run lifecycle on both backends: delete with all data, crash detection, run export,
and alerts written at ingest reaching the live stream's ``alerts`` event."""

from __future__ import annotations

import time
from datetime import timedelta

import orjson
from sqlalchemy import text, update

from fitscope_server.api.events import run_messages
from fitscope_server.db import make_engine
from fitscope_server.ingest import announce
from fitscope_server.models import AlertRow, RunRow
from fitscope_server.storage import events, points
from fitscope_server.storage.runs import utcnow

TABLES = ("series", "point_blocks", "histograms", "batches", "alerts")


def _fill(client, run_id: str) -> None:
    client.post("/api/v1/runs", json={"id": run_id, "name": run_id}).raise_for_status()
    body = {
        "batch_id": f"{run_id}-b",
        "scalars": {"train/loss": {"steps": list(range(1, 5001)), "values": [0.5] * 5000}},
        "histograms": [{"key": "val/confidence", "step": 5, "edges": [0, 1], "counts": [3]}],
    }
    client.post(f"/api/v1/runs/{run_id}/batches", json=body).raise_for_status()


def _counts(db_url: str, run_id: str) -> dict[str, int]:
    by_series = "series_id IN (SELECT id FROM series WHERE run_id = :r)"
    where = {"point_blocks": by_series, "histograms": by_series}
    engine = make_engine(db_url)
    try:
        with engine.connect() as c:
            return {
                t: c.execute(
                    text(f"SELECT COUNT(*) FROM {t} WHERE {where.get(t, 'run_id = :r')}"),
                    {"r": run_id},
                ).scalar_one()
                for t in TABLES
            }
    finally:
        engine.dispose()


def _add_alert(db, run_id: str) -> None:
    with db.write_session() as s:
        _alert_row(s, run_id)


def _alert_row(s, run_id: str) -> None:
    now = utcnow()
    s.add(
        AlertRow(
            run_id=run_id,
            rule="divergence",
            severity="critical",
            step=5000,
            onset_step=4990,
            message="loss rising",
            remedy="lower the learning rate",
            evidence=orjson.dumps({"series": ["train/loss"]}).decode(),
            status="open",
            created_at=now,
            updated_at=now,
        )
    )


def test_delete_removes_the_run_and_all_its_data(client, db_url):
    _fill(client, "gone")
    _fill(client, "kept")
    _add_alert(client.app.state.db, "gone")
    before = _counts(db_url, "gone")
    assert all(before[t] > 0 for t in TABLES), before
    assert client.delete("/api/v1/runs/gone").status_code == 204
    assert _counts(db_url, "gone") == dict.fromkeys(TABLES, 0)
    assert client.get("/api/v1/runs/gone").status_code == 404
    assert client.delete("/api/v1/runs/gone").status_code == 404
    assert [r["id"] for r in client.get("/api/v1/runs").json()] == ["kept"]
    kept = client.get("/api/v1/runs/kept/series", params={"key": "train/loss"}).json()
    assert kept["total"] == 5000
    # the same id can be used again, from scratch (cached series ids are not reused)
    _fill(client, "gone")
    keys = {k["key"]: k["count"] for k in client.get("/api/v1/runs/gone/keys").json()}
    assert keys == {"train/loss": 5000, "val/confidence": 1}


def test_a_silent_run_becomes_crashed_and_speaking_again_revives_it(db_url, tmp_path):
    from fastapi.testclient import TestClient

    from fitscope_server import Settings, create_app

    app = create_app(Settings(db_url=db_url, dir=tmp_path, heartbeat_timeout=0.3))
    with TestClient(app) as client:
        client.post("/api/v1/runs", json={"id": "quiet", "name": "q"}).raise_for_status()
        time.sleep(0.5)
        assert client.get("/api/v1/runs").json()[0]["status"] == "crashed"
        client.post("/api/v1/runs/quiet/heartbeat").raise_for_status()
        assert client.get("/api/v1/runs/quiet").json()["status"] == "running"
        msgs, _, _, _ = run_messages(app.state.db, "quiet", 0)
        statuses = [orjson.loads(m.split(b"data: ", 1)[1])["status"] for m in msgs]
        assert statuses == ["running"]  # consecutive run events collapse to the current state


def test_reading_runs_never_writes_only_the_sweeper_marks_them_crashed(db_url, tmp_path):
    from fastapi.testclient import TestClient

    from fitscope_server import Settings, create_app
    from fitscope_server.live import sweep_once

    settings = Settings(db_url=db_url, dir=tmp_path, heartbeat_timeout=3600, crash_check_s=3600)
    app = create_app(settings)  # the sweeper's first look is 15 minutes away
    with TestClient(app) as client:
        client.post("/api/v1/runs", json={"id": "quiet", "name": "q"}).raise_for_status()
        db = app.state.db
        db.last_outage -= 7200  # as if the server had been up for two hours
        with db.write_session() as s:
            s.execute(update(RunRow).values(heartbeat_at=utcnow() - timedelta(hours=2)))
            cursor = events.last_id(s)
        assert client.get("/api/v1/runs").json()[0]["status"] == "running"
        assert client.get("/api/v1/runs/quiet").json()["status"] == "running"
        with db.session() as s:
            assert events.last_id(s) == cursor  # no event: nothing was written
        assert sweep_once(db, settings) == ["quiet"]
        assert client.get("/api/v1/runs/quiet").json()["status"] == "crashed"


def test_series_ids_cached_before_another_process_deleted_the_run_are_not_used(client, db_url):
    from fitscope_server.db import Database
    from fitscope_server.storage import runs

    _fill(client, "again")
    other = Database(db_url)  # another server process: deletes the run and makes it again
    try:
        with other.write_session() as s:
            runs.delete_run(s, "again")
        with other.write_session() as s:
            runs.create_run(s, "again", "p", "again", {})
    finally:
        other.dispose()
    body = {"batch_id": "after", "scalars": {"train/loss": {"steps": [7], "values": [0.25]}}}
    r = client.post("/api/v1/runs/again/batches", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["stored"] == 1
    series = client.get("/api/v1/runs/again/series", params={"key": "train/loss"}).json()
    assert (series["steps"], series["values"]) == ([7], [0.25])


def test_alerts_written_at_ingest_reach_the_stream(client):
    _fill(client, "al")
    db = client.app.state.db
    with db.session() as s:
        cursor = events.last_id(s)
    with db.write_session() as s:  # what the ingest service does around the diagnosis rules
        started = utcnow()
        _alert_row(s, "al")
        s.flush()
        announce(s, "al", points.Stored(), started)
    msgs, new_cursor, deleted, more = run_messages(db, "al", cursor)
    assert new_cursor > cursor and not deleted and not more
    assert len(msgs) == 1 and msgs[0].startswith(b"id: ") and b"event: alerts\n" in msgs[0]
    (alert,) = orjson.loads(msgs[0].split(b"data: ", 1)[1])
    assert (alert["rule"], alert["severity"], alert["step"]) == ("divergence", "critical", 5000)
    assert alert["evidence"] == {"series": ["train/loss"]} and alert["remedy"]


def test_run_export_as_json_lines_and_csv(client):
    _fill(client, "ex")
    client.post(
        "/api/v1/runs/ex/batches",
        json={
            "batch_id": "nf",
            "scalars": {"odd": {"steps": [1, 2], "values": ["NaN", "-Infinity"]}},
        },
    ).raise_for_status()
    _add_alert(client.app.state.db, "ex")
    r = client.get("/api/v1/runs/ex/export")
    assert r.status_code == 200 and "ex.jsonl" in r.headers["content-disposition"]
    lines = [orjson.loads(x) for x in r.text.splitlines()]
    assert lines[0]["type"] == "run" and lines[0]["id"] == "ex"
    pts = [x for x in lines if x["type"] == "point"]
    assert len(pts) == 5002
    assert {"type": "point", "key": "odd", "step": 2, "value": "-Infinity", "time": None} in pts
    assert [x["step"] for x in lines if x["type"] == "histogram"] == [5]
    # the planted alert, plus whatever the diagnosis raised on the data (its NaN losses)
    assert "divergence" in [x["rule"] for x in lines if x["type"] == "alert"]
    csv = client.get("/api/v1/runs/ex/export", params={"format": "csv"}).text.splitlines()
    assert csv[0] == "key,step,value,time" and len(csv) == 5003 and "odd,1,NaN," in csv
    assert client.get("/api/v1/runs/nope/export").status_code == 404
    assert client.get("/api/v1/runs/ex/export", params={"format": "xml"}).status_code == 422
