"""The scenario suite: labelled real training runs through the hook and a real server.

All scenarios run once per session (in two parallel worker processes, each running its share
of the scenarios one after another), against one server with a fresh SQLite database. Each
scenario is then its own test; the table of detections, false alarms and delays is printed
(``pytest -s``) and written to ``tmp/artifacts/scenarios.md``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.scenarios.catalog import SCENARIOS
from tests.scenarios.score import Score, score, table
from tests.support.servers import REPO, ServerProcess

WORKERS = 2


def _run_all(url: str, tmp: Path) -> dict[str, dict]:
    ids = list(SCENARIOS)
    shares = [ids[i::WORKERS] for i in range(WORKERS)]
    env = dict(
        os.environ,
        FITSCOPE_DIR=str(tmp / "client"),
        OMP_NUM_THREADS="1",
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.scenarios.runner", url, *share],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for share in shares
    ]
    results: dict[str, dict] = {}
    for p in procs:
        out, err = p.communicate(timeout=600)
        for line in out.splitlines():
            if line.startswith("RESULT "):
                r = json.loads(line[7:])
                results[r["id"]] = r
        if p.returncode != 0:
            raise RuntimeError(f"scenario worker failed:\n{err[-3000:]}")
    return results


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Score]:
    tmp = tmp_path_factory.mktemp("scenarios")
    srv = ServerProcess(f"sqlite:///{tmp / 'fitscope.db'}", tmp).start()
    try:
        results = _run_all(srv.url, tmp)
        scores: dict[str, Score] = {}
        for sid, sc in SCENARIOS.items():
            run_id = results[sid]["run_id"]
            alerts = srv.api(f"/api/v1/runs/{run_id}/alerts")
            s = score(
                sc,
                alerts,  # type: ignore[arg-type]
                lambda key, rid=run_id: srv.api(f"/api/v1/runs/{rid}/series", key=key),  # type: ignore[misc]
            )
            s.seconds = results[sid]["seconds"]
            scores[sid] = s
    finally:
        srv.stop()
    text = table(list(scores.values()))
    print("\n" + text)
    out = REPO / "tmp" / "artifacts"
    out.mkdir(parents=True, exist_ok=True)
    (out / "scenarios.md").write_text(text + "\n")
    return scores


@pytest.mark.parametrize("sid", list(SCENARIOS))
def test_scenario(suite: dict[str, Score], sid: str) -> None:
    s = suite[sid]
    sc = s.scenario
    assert not s.missed, f"{sid}: missed {s.missed}; alerts: {[a['rule'] for a in s.alerts]}"
    assert not s.false_alarms, (
        f"{sid}: false alarms {[(a['rule'], a['message']) for a in s.false_alarms]}"
    )
    if sc.chain:
        assert s.chain_ok, (
            f"{sid}: caused_by links do not lead from {sc.chain[0]} to {sc.chain[-1]}"
        )


def test_suite_covers_every_rule_and_has_healthy_runs() -> None:
    # rules the hook cannot yet feed in a scenario (pre-clipping norms) are covered by the
    # fault-injection benchmark (tests/diagnosis/test_benchmark.py)
    from bench.diag_runs import FAULTS, Spec, truth
    from fitscope_server.diagnosis import BY_ID

    covered = set().union(*(sc.expected for sc in SCENARIOS.values()))
    benchmark = set().union(*(truth(Spec(a[0], f, 0)).expected for f, a in FAULTS.items()))
    assert covered | benchmark == set(BY_ID), set(BY_ID) - covered - benchmark
    assert sum(sc.healthy for sc in SCENARIOS.values()) >= 6
    assert len(SCENARIOS) >= 16
