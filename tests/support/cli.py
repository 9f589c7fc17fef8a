"""Running the real ``fitscope`` command, and putting runs and alerts on a real server."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path

import httpx


def cli(
    *args: str, tmp_path: Path, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess:
    """``python -m fitscope.cli ARGS`` in a fresh interpreter, as a user types it."""
    full = {k: v for k, v in os.environ.items() if k not in ("FITSCOPE_URL", "FITSCOPE_TOKEN")}
    full.update({"FITSCOPE_DIR": str(tmp_path / "client"), "COLUMNS": "160", **env})
    return subprocess.run(
        [sys.executable, "-m", "fitscope.cli", *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def make_run(
    url: str,
    name: str,
    project: str = "p",
    scalars: dict | None = None,
    histograms: list | None = None,
    finish: bool = True,
) -> str:
    """Create a run through the ingest protocol, as the hook would."""
    run_id = uuid.uuid4().hex
    with httpx.Client(base_url=url, timeout=30) as c:
        c.post(
            "/api/v1/runs", json={"id": run_id, "project": project, "name": name}
        ).raise_for_status()
        if scalars or histograms:
            body = {"batch_id": "b1", "scalars": scalars or {}, "histograms": histograms or []}
            c.post(f"/api/v1/runs/{run_id}/batches", json=body).raise_for_status()
        if finish:
            c.post(f"/api/v1/runs/{run_id}/finish", json={"status": "finished"}).raise_for_status()
    return run_id


def plant_alerts(db_url: str, run_id: str, alerts: list[dict]) -> None:
    """Write alerts as the diagnosis would (the rules themselves are tested elsewhere)."""
    import orjson

    from fitscope_server.db import Database
    from fitscope_server.models import AlertRow

    db = Database(db_url)
    now = datetime.now(timezone.utc)
    with db.session() as s:
        for a in alerts:
            s.add(
                AlertRow(
                    run_id=run_id,
                    rule=a["rule"],
                    severity=a["severity"],
                    step=a["step"],
                    onset_step=a.get("onset_step"),
                    message=a["message"],
                    remedy=a.get("remedy", ""),
                    evidence=orjson.dumps(a.get("evidence", {})).decode(),
                    status=a.get("status", "open"),
                    created_at=now,
                    updated_at=now,
                )
            )
    db.dispose()
