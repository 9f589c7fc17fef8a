"""The min/max reduction never hides a spike."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fitscope_server.reduce import reduce_minmax


@pytest.mark.parametrize("n_out", [2, 7, 100, 1000, 4096])
def test_single_spike_survives_any_reduction(n_out):
    rng = np.random.default_rng(0)
    n = 200_003
    values = rng.normal(1.0, 0.01, n)
    spike_at = 123_457
    values[spike_at] = 50.0
    r = reduce_minmax(np.arange(n), values, n_out)
    assert len(r["steps"]) == n_out
    assert max(r["max"]) == 50.0
    bucket = r["steps"].index(max(s for s in r["steps"] if s <= spike_at))
    assert r["max"][bucket] == 50.0
    assert min(r["min"]) == pytest.approx(values.min())


def test_short_series_is_returned_whole():
    r = reduce_minmax([1, 2, 3], [1.0, 2.0, 3.0], 10)
    assert r == {"steps": [1, 2, 3], "values": [1.0, 2.0, 3.0], "min": None, "max": None}


def test_buckets_of_nan_and_inf():
    vals = [1.0, 2.0, math.nan, math.nan, math.inf, 1.0]
    r = reduce_minmax(list(range(6)), vals, 3)
    assert r["values"][0] == 1.5
    assert math.isnan(r["values"][1]) and math.isnan(r["max"][1])
    assert r["max"][2] == math.inf and r["min"][2] == 1.0


@pytest.mark.parametrize("n_out", [3, 10, 999])
def test_the_point_path_matches_the_unit_path(n_out):
    from fitscope_server.reduce import point_units, reduce_points, reduce_units

    rng = np.random.default_rng(3)
    steps = np.arange(5, 10_005)
    values = rng.normal(0.0, 1.0, 10_000)
    values[[7, 8, 9, 500]] = [np.nan, np.inf, -np.inf, np.nan]
    values[1000:1100] = np.nan
    values[2000:2050] = np.inf
    fast = reduce_points(steps, values, n_out)
    slow = reduce_units(point_units(steps, values), n_out)
    for k in ("steps", "values", "min", "max"):
        np.testing.assert_allclose(fast[k], slow[k])
    finite = reduce_points(steps, np.nan_to_num(values, nan=0.0, posinf=1.0, neginf=-1.0), n_out)
    assert np.isfinite(finite["values"]).all()
