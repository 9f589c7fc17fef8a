"""``no_loss_captured``: steps with gradients and learning rates but no training loss."""

from __future__ import annotations

from fitscope_server.diagnosis import Engine, Facts, RunState

FACTS = Facts(num_classes=4, hooked=True, layers={"0": 100})


def _steps(eng: Engine, st: RunState, n: int, loss: bool) -> RunState:
    steps = list(range(1, n + 1))
    sc = {"grad_norm/total": (steps, [1.0] * n), "lr/0": (steps, [0.1] * n)}
    if loss:
        sc["train/loss"] = (steps, [1.0 - 0.001 * s for s in steps])
    eng.process(st, FACTS, sc, [])
    return st


def test_steps_without_any_loss_raise_one_info_alert() -> None:
    st = _steps(Engine(), RunState(), 30, loss=False)
    ep = st.episodes["no_loss_captured"]
    assert (ep.status, ep.severity) == ("open", "info")
    assert "No training loss" in ep.message and "run.log" in ep.remedy


def test_few_steps_or_a_recorded_loss_raise_nothing() -> None:
    assert "no_loss_captured" not in _steps(Engine(), RunState(), 10, loss=False).episodes
    assert "no_loss_captured" not in _steps(Engine(), RunState(), 30, loss=True).episodes
