"""A small-scale load test (the full 32 runs x 60 s is bench/load.py): nothing lost, the
dashboard keeps answering meanwhile."""

from __future__ import annotations

from bench.load import run_load


def test_eight_runs_streaming_lose_nothing_and_the_dashboard_answers(tmp_path):
    result = run_load(runs=8, seconds=4, rate=4, points=500, workdir=tmp_path)
    print(result.report())
    assert result.requests >= 8
    assert result.points_stored == result.points_sent > 0
    assert result.dashboard_ms, "the dashboard never answered during the load"
