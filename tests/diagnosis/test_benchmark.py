"""The representative part of the fault-injection benchmark (``bench/diagnosis_benchmark.py``),
trained for real here (tiny PyTorch models, a few hundred steps each), held to the targets.

Every fault type once (architectures in rotation) and one healthy run of every architecture and
healthy variant: the expected diagnosis is found, the first warning/critical alert names the
root cause, healthy runs stay quiet, and the delays stay within their targets.
"""

from __future__ import annotations

import pytest

from bench.diag_runs import ci_specs
from bench.diagnosis_benchmark import evaluate, report, summarize

# target delays (steps, or evaluations for overfitting) per fault and rule
DELAYS = {
    ("nan_explosion", "non_finite"): 0,
    ("nan_explosion", "exploding_gradients"): 3,  # no later than the first non-finite step
    ("grad_spike", "exploding_gradients"): 0,
    ("early_explosion", "exploding_gradients"): 0,
    ("divergence", "divergence"): 10,
    ("lr_jump", "lr_jump"): 10,
    ("overfitting", "overfitting"): 2,
    ("overfitting_per_epoch", "overfitting"): 2,
}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> list:
    import torch

    torch.set_num_threads(1)
    # a fresh cache: every run is trained here, nothing is read from an earlier benchmark
    return evaluate(ci_specs(), cache=tmp_path_factory.mktemp("diag_bench"))


def test_targets_on_the_representative_part(outcomes: list) -> None:
    s = summarize(outcomes)
    print(report(outcomes))
    assert s.faulty >= 16 and s.healthy >= 8
    assert s.found >= 0.95, [(o.spec.id, o.missed) for o in outcomes if o.missed]
    assert s.root >= 0.90, [
        (o.spec.id, o.first_loud, o.root_of_first) for o in outcomes if o.faulty and not o.root_ok
    ]
    assert s.healthy_false <= 0.02, [
        (o.spec.id, o.loud) for o in outcomes if not o.faulty and o.loud
    ]
    assert s.open_ok == 1.0


def test_delays_on_the_representative_part(outcomes: list) -> None:
    for o in outcomes:
        for rule in o.truth.expected:
            limit = DELAYS.get((o.spec.fault, rule))
            if limit is None:
                continue
            d = o.delay(rule)
            assert d is not None and d <= limit, (o.spec.id, rule, d, o.raised)
