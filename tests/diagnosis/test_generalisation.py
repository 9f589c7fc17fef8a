"""Classes of failure seen on runs the rules were not tuned on, each on synthetic series fed
through the whole engine: the right root cause, at the right step, silence when it is fine."""

from __future__ import annotations

import math
import types
from typing import Any, cast

from fitscope_server.diagnosis import Facts

from .tables import LN4, build, const, decay, hist

NAN = math.nan


def facts(**kw) -> Facts:
    base: dict[str, Any] = {"num_classes": 4, "hooked": True}
    base.update(kw)
    return Facts(**base)


def grads(n: int, seed: int = 3) -> list[float]:
    return const(1.0, n, noise=0.3, seed=seed)


# -- exploding gradients in its three forms ------------------------------------------------
def test_one_bad_batch_is_flagged_at_its_step() -> None:
    for at in (137, 151, 163):  # not on the engine's every-5-steps grid
        g = grads(250)
        g[at - 1] = 1000.0
        state, _ = build(loss=decay(LN4, 0.3, 250, noise=0.05), grads={"total": g}, rules=True)
        ep = state.episodes["exploding_gradients"]
        assert ep.step == at and ep.onset_step == at, (at, ep.step, ep.message)
        assert ep.evidence["kind"] == "spike"


def test_healthy_noisy_gradients_raise_no_spike() -> None:
    # heavy-tailed but healthy: x3-x5 outliers now and then
    for seed in range(5):
        g = const(1.0, 400, noise=0.5, seed=seed)
        for i in range(20, 400, 37):
            g[i] *= 4.0
        state, _ = build(loss=decay(LN4, 0.3, 400, noise=0.1), grads={"total": g}, rules=True)
        assert "exploding_gradients" not in state.episodes, seed


def test_explosion_to_nan_names_the_gradients() -> None:
    n = 120
    g = grads(n) + [100.0, 1e4, 1e6, NAN, NAN, NAN]
    loss = decay(LN4, 0.3, n) + [5.0, 50.0, 5e3, NAN, NAN, NAN]
    state, _ = build(loss=loss, grads={"total": g}, rules=True)
    ex, nf = state.episodes["exploding_gradients"], state.episodes["non_finite"]
    assert ex.step <= n + 4 and ex.onset_step == n + 1
    assert nf.onset_step == n + 4
    assert nf.evidence["caused_by"]["rule"] == "exploding_gradients"


def test_early_explosion_is_judged_against_the_first_steps() -> None:
    g = grads(18) + [50.0 * x for x in grads(40, seed=5)]
    state, _ = build(loss=decay(LN4, 0.5, 58), grads={"total": g}, rules=True)
    ep = state.episodes["exploding_gradients"]
    assert ep.step <= 21 and ep.onset_step == 19, (ep.step, ep.onset_step)


# -- a learning rate that is too high: root cause first, no remedy against its evidence -----
def test_lr_too_high_is_the_root_of_the_collapse() -> None:
    n = 300
    loss = [1.5, 60.0, 40.0] + const(LN4, n - 3, 0.005)  # 1.5 -> 60 at step 2
    layers = {"total": grads(n), "0": [0.0] * n, "2": [0.0] * n, "4": grads(n, seed=9)}
    state, _ = build(
        loss=loss,
        grads=layers,
        evals=[(25 * i, LN4, 0.25, None) for i in range(1, 13)],
        lr=[0.5] * n,
        facts=facts(layers={"0": 100, "2": 100, "4": 10}),
        rules=True,
    )
    eps = state.episodes
    assert eps["lr_too_high"].severity == "critical"
    assert "learning rate" in eps["lr_too_high"].message
    for rule in ("no_update", "not_learning", "underfitting"):
        assert rule not in eps, (rule, eps[rule].message if rule in eps else "")
    for rule, ep in eps.items():
        if rule != "lr_too_high" and ep.severity in ("warning", "critical"):
            assert ep.evidence["caused_by"]["rule"] in ("lr_too_high", "dead_units"), rule
        assert "higher learning rate" not in ep.remedy
        assert "learning rate is 0" not in ep.remedy.lower()


def test_no_update_remedy_fits_its_evidence() -> None:
    state, _ = build(loss=const(LN4, 100, 0.01), lr=[0.1] * 100, rules=True)  # no gradients
    ep = state.episodes["no_update"]
    assert "zero_grad()" in ep.remedy and "learning rate is 0" not in ep.remedy


# -- guards with limits -------------------------------------------------------------------
def test_warmup_that_never_ends_is_a_finding_and_silences_nothing() -> None:
    n = 400
    lr = [1e-4 * (i + 1) for i in range(n)]  # x400, still rising
    loss = decay(LN4, 0.3, 150) + [0.3 + 0.02 * i for i in range(n - 150)]
    evals = [
        (20 * i, 0.3 + (0.1 * i if i > 8 else 0), 0.92 - (0.06 * i if i > 8 else 0), None)
        for i in range(1, 20)
    ]
    state, _ = build(loss=loss, lr=lr, evals=evals, rules=True)
    assert state.episodes["warmup_runaway"].severity == "warning"
    assert "divergence" in state.episodes  # no longer held back by the warm-up guard


def test_calibration_waits_while_validation_loss_still_falls() -> None:
    falling = [1.2 * 0.96**i for i in range(8)]  # -4% an evaluation, steadily
    h = hist(1000, 0.85, 0.6)
    state, fx = build(
        loss=decay(LN4, 0.4, 200),
        evals=[(25 * (i + 1), v, 0.85, h) for i, v in enumerate(falling)],
        rules=True,
    )
    assert "underconfidence" not in state.episodes
    flat = falling + [falling[-1] * (1 + 0.002 * (i % 2)) for i in range(5)]
    state, fx = build(
        loss=decay(LN4, 0.4, 350),
        evals=[(25 * (i + 1), v, 0.85, h) for i, v in enumerate(flat)],
        rules=True,
    )
    assert "underconfidence" in state.episodes


def test_accuracy_at_chance_does_not_outvote_a_loss_far_below_chance() -> None:
    k = 32
    ln_k = math.log(k)
    evals = [(50 * i, 1.88, 1.0 / k, None) for i in range(1, 8)]
    state, _ = build(
        loss=decay(ln_k, 1.8, 350), evals=evals, facts=facts(num_classes=k), rules=True
    )
    assert "not_learning" not in state.episodes


# -- windows counted in evaluations -------------------------------------------------------
def _overfit_evals(scale: int) -> list[tuple]:
    vals = [1.2 * 0.8**i for i in range(10)] + [0.13 + 0.03 * i for i in range(30)]
    accs = [0.6 + 0.03 * i for i in range(10)] + [0.88 - 0.006 * i for i in range(30)]
    return [(scale * (i + 1), v, a, None) for i, (v, a) in enumerate(zip(vals, accs, strict=True))]


def test_per_epoch_history_is_judged_whatever_its_step_numbers() -> None:
    results = []
    for scale in (1, 100):
        evals = _overfit_evals(scale)
        loss = [0.9 * 0.9**i for i in range(40)]  # one training loss per epoch
        steps = {scale * (i + 1): v for i, v in enumerate(loss)}
        table = [steps.get(s) for s in range(1, scale * 40 + 1)]
        state, _ = _sparse(table, evals)  # training losses only at the evaluation steps
        ep = state.episodes.get("overfitting")
        assert ep is not None, scale
        results.append((ep.severity, state.evals.count - 1 - _index(evals, ep.step)))
    assert results[0] == results[1]


def _index(evals: list[tuple], step: int) -> int:
    return next(i for i, e in enumerate(evals) if e[0] == step)


def _sparse(table: list, evals: list[tuple]):
    from fitscope_server.diagnosis import Engine, RunState

    state, engine, fx = RunState(), Engine(), facts()
    for _i, (step, vl, va, _) in enumerate(evals):
        sc = {
            "train/loss": ([step], [table[step - 1]]),
            "val/loss": ([step], [vl]),
            "val/accuracy": ([step], [va]),
        }
        engine.process(state, fx, sc, [])
    return state, fx


# -- structural faults stay open ----------------------------------------------------------
def test_missing_zero_grad_stays_open_after_the_sum_stops_growing() -> None:
    n = 600
    g = [min(1.0 + 0.5 * i, 80.0) * (1 + 0.01 * ((i * 7) % 3 - 1)) for i in range(n)]
    state, _ = build(loss=decay(LN4, 0.5, n, noise=0.05), grads={"total": g}, rules=True)
    ep = state.episodes["grad_accumulating"]
    assert ep.status == "open" and ep.last_hold_step == n


# -- consistent text ------------------------------------------------------------------------
def test_best_values_and_step_ranges_agree() -> None:
    vals = [1.0 * 0.85**i for i in range(8)] + [0.33 + 0.04 * i for i in range(16)]
    evals = [(25 * (i + 1), v, 0.8, None) for i, v in enumerate(vals)]
    state, _ = build(loss=decay(LN4, 0.1, 600, tau=100), evals=evals, rules=True)
    over, stop = state.episodes["overfitting"], state.episodes["early_stop"]
    assert over.evidence["best_val_loss"] == stop.evidence["best_val_loss"]
    assert over.evidence["best_step"] == stop.evidence["best_step"]
    for ep in state.episodes.values():
        if "start_step" in ep.evidence:
            assert ep.evidence["start_step"] == ep.onset_step, ep.rule


def test_terminal_prints_a_line_when_an_alert_escalates(capsys) -> None:
    from fitscope._run import Run

    run = types.SimpleNamespace(_alerts_seen=set(), url="http://x")
    alert = {"id": 7, "rule": "divergence", "step": 80, "message": "m"}
    for sev in ("warning", "warning", "critical", "critical"):
        Run._on_reply(run, None, {"alerts": [dict(alert, severity=sev)]})  # type: ignore[arg-type]
    lines = [ln for ln in capsys.readouterr().err.splitlines() if "divergence" in ln]
    assert len(lines) == 2
    assert lines[0].startswith("fitscope: [warning] divergence at step 80")
    assert "[critical] divergence (escalated from warning)" in lines[1]


def test_every_evidence_key_has_a_human_label() -> None:
    from fitscope_server.diagnosis import EVIDENCE_LABELS

    from .test_rules import PARAMS

    seen: set[str] = set()
    for p in PARAMS:
        rule, table, f, _ = cast(tuple[str, dict, Any, Any], p.values)
        from .tables import ask

        state, fx = build(facts=f, **table)
        finding = ask(rule, state, fx)
        if finding is not None:
            seen |= set(finding.evidence)
    assert seen and seen <= set(EVIDENCE_LABELS), seen - set(EVIDENCE_LABELS)


def test_structural_faults_stay_open_while_their_cause_persists() -> None:
    # Adam with coupled weight decay, and optimizer.step() with no gradient, for 1,000 steps
    n = 1000
    f = facts(optimizer="Adam", param_groups=[{"weight_decay": 0.01}], batch_size=512)
    state, _ = build(loss=const(LN4, n, 0.01), lr=[1e-3] * n, facts=f, rules=True)
    for rule in ("adam_weight_decay", "large_batch_no_warmup", "no_update"):
        ep = state.episodes[rule]
        assert ep.status == "open" and ep.evidence["end_step"] == n, rule
