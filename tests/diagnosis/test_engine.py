"""The engine: episodes, root-cause links, silencing, overrides, bounded incremental state."""

from __future__ import annotations

import math

import orjson

from fitscope_server.diagnosis import Engine, Facts, RunState
from fitscope_server.diagnosis.overrides import resolve

from .tables import LN4, const, decay

FACTS = Facts(num_classes=4, hooked=True, layers={"0": 100, "2": 40})


def feed(engine: Engine, state: RunState, start: int, loss, grad=None, lr=None, batch: int = 50):
    """Steps start.. with the given per-step values, in batches, through a JSON round trip."""
    n = len(loss)
    for lo in range(0, n, batch):
        steps = list(range(start + lo, start + min(n, lo + batch)))
        idx = range(lo, min(n, lo + batch))
        sc = {"train/loss": (steps, [loss[i] for i in idx])}
        if grad is not None:
            g = [grad[i] for i in idx]
            sc["grad_norm/total"] = (steps, g)
            sc["grad_norm/0"] = (steps, [x * 0.5 for x in g])
            sc["grad_norm/2"] = (steps, g)
        sc["lr/0"] = (steps, [lr[i] if lr else 0.1 for i in idx])
        engine.process(state, FACTS, sc, [])
        state = RunState.from_json(orjson.loads(orjson.dumps(state.to_json())))
    return state


def alerts(state: RunState) -> dict[str, tuple[str, str]]:
    return {r: (e.status, e.severity) for r, e in state.episodes.items()}


def test_a_nan_run_is_one_alert_updated_while_it_lasts() -> None:
    eng, st = Engine(), RunState()
    st = feed(eng, st, 1, decay(LN4, 0.3, 100), [1.0] * 100)
    st = feed(eng, st, 101, [math.nan] * 1000, [math.nan] * 1000)
    assert alerts(st) == {"non_finite": ("open", "critical")}
    ep = st.episodes["non_finite"]
    assert ep.step == 101 and ep.onset_step == 101
    assert "1,000 non-finite" in ep.message


def test_an_episode_resolves_and_comes_back_as_the_same_alert() -> None:
    eng, st = Engine(), RunState()
    g = [1.0 + 0.1 * math.sin(i) for i in range(200)]
    st = feed(eng, st, 1, decay(LN4, 0.3, 200), g)
    st = feed(eng, st, 201, const(0.3, 10), [40.0] * 10)  # a spike held 10 steps
    ep = st.episodes["exploding_gradients"]
    assert ep.status == "open"
    ep.alert_id = 7  # as if stored
    st = feed(eng, st, 211, const(0.3, 60), [1.0] * 60)
    assert st.episodes["exploding_gradients"].status == "resolved"
    st = feed(eng, st, 271, const(0.3, 10), [40.0] * 10)  # back within 200 steps: same alert
    ep = st.episodes["exploding_gradients"]
    assert ep.status == "open" and ep.alert_id == 7


def test_lr_jump_exploding_gradients_and_nan_read_as_one_story() -> None:
    eng, st = Engine(), RunState()
    st = feed(eng, st, 1, decay(LN4, 0.3, 150), [1.0 + 0.1 * math.sin(i) for i in range(150)])
    lr = [1.0] * 30
    st = feed(eng, st, 151, const(0.3, 30), [100.0] * 30, lr=lr)  # LR x10, gradients x100
    st = feed(eng, st, 181, [math.nan] * 20, [math.nan] * 20, lr=[1.0] * 20)
    eps = st.episodes
    assert eps["lr_jump"].status == "open"
    assert eps["exploding_gradients"].evidence["caused_by"]["rule"] == "lr_jump"
    assert eps["non_finite"].evidence["caused_by"]["rule"] in ("lr_jump", "exploding_gradients")
    assert "Likely caused by" in eps["non_finite"].message


def test_symptoms_are_silenced_while_their_cause_is_open() -> None:
    eng, st = Engine(), RunState()
    st = feed(eng, st, 1, decay(LN4, 0.5, 100), [1.0] * 100)
    st = feed(eng, st, 101, [math.nan] * 600, [math.nan] * 600)
    assert set(st.episodes) == {"non_finite"}  # no plateau / not_learning / divergence on top


def test_overrides_switch_rules_off_and_change_thresholds() -> None:
    params, off = resolve(
        {"plateau": False, "divergence": {"rise_factor": 3}},
        {"plateau": {"enabled": True}, "non_finite": {"enabled": False}, "nope": 1},
    )
    assert "plateau" not in off and "non_finite" in off
    assert params["divergence"]["rise_factor"] == 3.0
    eng, st = Engine(params, off), RunState()
    st = feed(eng, st, 1, [math.nan] * 100, [math.nan] * 100)
    assert "non_finite" not in st.episodes
    params, off = resolve({"overfitting": {"gl_warn": "high", "bogus": 2}})
    assert params["overfitting"]["gl_warn"] == 0.05 and not off


def test_state_is_bounded_and_duplicates_are_ignored() -> None:
    eng, st = Engine(), RunState()
    st = feed(eng, st, 1, decay(LN4, 0.3, 20_000, tau=3000, noise=0.1), [1.0] * 20_000, batch=500)
    size = len(orjson.dumps(st.to_json()))
    assert size < 60_000, size
    before = orjson.dumps(st.to_json())
    st2 = feed(eng, st, 19_000, const(9.0, 500), [1.0] * 500)  # a resent, older range
    assert st2.step == 20_000 and st2.train.count == 20_000
    assert orjson.dumps(st2.to_json()) == before


def test_nonfinite_values_survive_the_state_round_trip() -> None:
    st = RunState()
    st.train.add(1, math.inf)
    st.train.add(2, math.nan)
    st.train.add(3, 0.5)
    back = RunState.from_json(orjson.loads(orjson.dumps(st.to_json())))
    assert back.train.loss.values[0] == math.inf and math.isnan(back.train.loss.values[1])
    assert back.train.last_finite == 0.5


def test_state_saved_with_fields_since_removed_still_loads() -> None:
    st = RunState()
    st.train.add(1, 0.5)
    doc = orjson.loads(orjson.dumps(st.to_json()))
    # fields that older servers wrote into every run's state and nothing read
    doc["skipped_steps"] = 3
    doc["lr"]["decrease_step"] = 40
    doc["evals"]["best_train"] = 0.25
    back = RunState.from_json(doc)
    assert back.train.last_finite == 0.5
    assert orjson.dumps(back.to_json()) == orjson.dumps(st.to_json())
