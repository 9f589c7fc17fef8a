"""The incremental engine: feed a batch's points into a run's state, run the rules that are due.

``Engine.process`` touches only the new points (each costs O(1) amortised plus the due rules'
window checks), so a run's cost per batch does not grow with its history.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from . import episodes
from .base import Context, Facts, Rule
from .rules import BY_ID, RULES
from .state import RunState
from .timeline import StepData, timeline
from .windows import Eval

# step rules run every 5 optimizer steps (and on the last step of each batch, and at once on a
# non-finite value): detection delay +-4 steps for a fifth of the work.
CHECK_EVERY = 5
TOP_BIN = 0.9  # "confidence 0.9+" (TRAINING_PRACTICES 000): the share of the top bin(s)


_RANK = {r.id: i for i, r in enumerate(RULES)}


class Engine:
    """Applies points to a :class:`RunState` and records the rules' findings as episodes."""

    def __init__(
        self, params: Mapping[str, Mapping[str, float]] | None = None, disabled: Iterable[str] = ()
    ) -> None:
        self.params = {rid: dict((params or {}).get(rid, r.params)) for rid, r in BY_ID.items()}
        self.disabled = set(disabled)
        self.by_trigger: dict[str, list[Rule]] = {}
        for r in RULES:
            if r.id not in self.disabled:
                self.by_trigger.setdefault(r.on, []).append(r)

    def process(
        self,
        state: RunState,
        facts: Facts,
        scalars: Mapping[str, tuple[list[int], list[float]]],
        histograms: Iterable[tuple[str, int, Mapping[str, Any]]] = (),
    ) -> RunState:
        records = timeline(scalars, histograms)
        last_train = max((d.step for d in records if d.has_train), default=None)
        config_done = False
        for d in records:
            due: list[str] = []
            if d.has_train and d.step > state.step:
                urgent = self._train(state, facts, d)
                if urgent or state.steps_seen % CHECK_EVERY == 0 or d.step == last_train:
                    due.append("step")
                probe = self.params["large_batch_no_warmup"]["warmup_probe_steps"]
                if not config_done or d.step == last_train or state.lr.steps == probe:
                    due.append("config")
                    config_done = True
            if (d.update_total is not None or d.updates) and d.step > state.updates.last_step:
                state.updates.add(d.step, d.update_total, d.updates)
            if d.params and d.step > state.params.last_step:
                state.params.add(d.step, d.params)
            if d.train_labels is not None and d.step > state.labels.train_step:
                state.labels.add_train(d.step, d.train_labels)
            if d.has_eval and d.step > state.evals.last_step:
                self._eval(state, d)
                due.append("eval")
            if d.val_labels is not None and d.step > state.labels.val_step:
                state.labels.val, state.labels.val_step = d.val_labels[:10_000], d.step
                due.append("labels")
            if due:
                self.evaluate(state, facts, due, max(d.step, state.step))
        if not config_done and records:
            self.evaluate(state, facts, ["config"], state.step)
        return state

    # -- windows --------------------------------------------------------------------
    def _train(self, state: RunState, facts: Facts, d: StepData) -> bool:
        """Update the step windows; True when something non-finite needs a check at once."""
        state.step = d.step
        state.steps_seen += 1
        urgent = False
        if d.lrs:
            if state.lr.add(
                d.step,
                d.lrs,
                self.params["lr_jump"]["jump_factor"],
                int(self.params["large_batch_no_warmup"]["warmup_probe_steps"]),
            ):
                state.train.rebaseline(d.step)
            if d.grad_total is None:
                if state.lr.without_grad == 0:
                    state.lr.without_grad_first = d.step
                state.lr.without_grad += 1
            else:
                state.lr.without_grad = 0
        if d.skipped is not None:
            if d.skipped >= 0.5:
                state.train.skipped_streak += 1
                urgent = True
            else:
                state.train.skipped_streak = 0
        if d.loss is not None:
            state.train.add(d.step, d.loss)
            urgent = urgent or not math.isfinite(d.loss)
        if d.grad_total is not None:
            spiked = state.grads.add(
                d.step, d.grad_total, d.grads, list(facts.layers), facts.layers
            )
            urgent = urgent or spiked or not math.isfinite(d.grad_total)
        return urgent

    def _eval(self, state: RunState, d: StepData) -> None:
        # the training loss "now": the mean of the losses since the previous evaluation (at
        # most 50), so a per-epoch history (one loss per evaluation) is not smeared over epochs
        t = state.train
        recent = [x for x in t.loss.since(state.evals.last_step + 1)[-50:] if math.isfinite(x)]
        e = Eval(step=d.step, train=sum(recent) / len(recent) if recent else t.level())
        if d.val_loss is not None:
            e.loss = d.val_loss
        if d.val_acc is not None:
            e.acc = d.val_acc
        if d.confidence is not None:
            _calibration(e, d.confidence)
        state.evals.add(e, self.params["early_stop"]["min_delta"])

    # -- rules -----------------------------------------------------------------------
    def evaluate(self, state: RunState, facts: Facts, triggers: list[str], step: int) -> None:
        ctx = Context(state, facts, step, episodes.open_onsets(state))
        # step rules wait for the first 50 steps; evaluation rules count evaluations instead
        # (each has its own minimum), so only an LR warm-up within its limits holds them back
        warm = {"step": ctx.warming_up, "eval": ctx.lr_ramp}
        rules = [r for t in triggers for r in self.by_trigger.get(t, ())]
        rules.sort(key=lambda r: _RANK[r.id])
        for rule in rules:
            if warm.get(rule.on, False) and not rule.during_warmup:
                continue
            finding = rule.check(ctx, self.params[rule.id])
            if episodes.record(state, rule, finding, step):
                ctx.open_rules = episodes.open_onsets(state)


def _calibration(e: Eval, hist: Mapping[str, Any]) -> None:
    """Mean confidence, accuracy and ECE (Guo et al. 2017) from the 15-bin histogram."""
    counts = [float(c) for c in hist.get("counts", [])]
    correct = hist.get("correct")
    conf_sum = hist.get("conf_sum")
    edges = hist.get("edges") or []
    n = sum(c for c in counts if math.isfinite(c))
    if n <= 0 or not isinstance(correct, list) or not isinstance(conf_sum, list):
        return
    right = [float(c) for c in correct]
    confs = [float(c) for c in conf_sum]
    if not all(math.isfinite(x) for x in right + confs):
        return
    e.n = n
    e.conf = sum(confs) / n
    if not math.isfinite(e.acc):
        e.acc = sum(right) / n
    e.ece = sum(abs(r - c) for r, c in zip(right, confs, strict=False)) / n
    top = [c for i, c in enumerate(counts) if i < len(edges) and float(edges[i]) >= TOP_BIN - 1e-9]
    if not top and counts:
        top = [counts[-1]]
    e.high = sum(top) / n
