"""The diagnosis service: runs the engine on each stored batch, in the batch's transaction.

State and alerts are written in the same transaction as the points, so a batch that is
rolled back (and resent by the hook) leaves no trace in the diagnosis either. A bug in a
rule is logged and skips diagnosis for that batch; it never loses the batch's points.

Late data: the engine moves forward only.  A batch holding training or evaluation steps
below those already diagnosed (delivered out of order: an import, a sync of a spool,
another client) makes the run be diagnosed again from its stored points, in step order
(``replay``), so that its alerts are those it would have had in order.  Alerts found
again keep their id; the others are deleted.  Runs of more than ``REPLAY_MAX_POINTS``
points are not replayed (the late steps are stored but not diagnosed; logged).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from fitscope.protocol import decode_float

from ..models import AlertRow, PointBlockRow
from ..storage import alerts as alert_store
from ..storage import diagnosis as state_store
from ..storage import histograms as hist_store
from ..storage import points, runs
from . import overrides
from .base import SEVERITY_RANK, Facts
from .engine import Engine
from .labels import evidence_labels
from .rules import RULES
from .state import RunState, wire
from .timeline import timeline
from .webhook import Webhook

log = logging.getLogger("fitscope.diagnosis")
NOTIFY = ("warning", "critical")
REPLAY_MAX_POINTS = 100_000  # a late batch for a larger run is stored, not re-diagnosed
REPLAY_CHUNK = 256  # steps per engine call when replaying (about a batch's worth)


class Diagnoser:
    """Owns the server-wide rule overrides and the optional webhook."""

    def __init__(
        self,
        rules: Mapping[str, Any] | None = None,
        *,
        enabled: bool = True,
        webhook: Webhook | None = None,
    ) -> None:
        self.rules = dict(rules or {})
        self.enabled = enabled
        self.webhook = webhook

    def observe(
        self,
        s: Session,
        run_id: str,
        scalars: Mapping[str, tuple[list[int], list[float]]],
        histograms: Sequence[tuple[str, int, Mapping[str, Any]]],
    ) -> list[dict[str, Any]]:
        """Diagnose one stored batch; returns the alerts to notify once the transaction commits."""
        if not self.enabled:
            return []
        run = runs.get_run(s, run_id)
        config = orjson.loads(run.config)
        doc = state_store.load_state(s, run_id)
        try:
            params, disabled = overrides.resolve(self.rules, overrides.run_overrides(config))
            state = RunState.from_json(doc) if doc is not None else RunState()
            engine = Engine(params, disabled)
            facts = Facts.from_config(config)
            if doc is not None and late(state, scalars, histograms):
                if replay_size(s, run_id) <= REPLAY_MAX_POINTS:
                    return self._replay(s, run, engine, facts)
                log.warning("run %s: late steps not diagnosed (run too large to replay)", run_id)
            engine.process(state, facts, scalars, histograms)
        except Exception:
            log.exception("diagnosis failed for run %s; this batch was stored undiagnosed", run_id)
            return []
        notes = _save(s, run, state)
        state_store.save_state(s, run_id, state.to_json())
        return notes

    def _replay(self, s: Session, run: Any, engine: Engine, facts: Facts) -> list[dict[str, Any]]:
        """Diagnose the run again from its stored points, in step order."""
        old = {(a.rule, a.step): a for a in alert_store.list_alerts(s, run.id)}
        scalars, hists = stored_inputs(s, run.id)
        every = [ss for ss, _ in scalars.values()] + [np.array([h[1] for h in hists], np.int64)]
        steps = np.unique(np.concatenate(every)).tolist()
        state = RunState()
        notes: list[dict[str, Any]] = []
        for i in range(0, len(steps), REPLAY_CHUNK):
            lo, hi = steps[i], steps[min(i + REPLAY_CHUNK, len(steps)) - 1]
            part = {k: _between(ss, vs, lo, hi) for k, (ss, vs) in scalars.items()}
            engine.process(state, facts, part, [h for h in hists if lo <= h[1] <= hi])
            for ep in state.episodes.values():
                kept = old.pop((ep.rule, ep.step), None) if ep.alert_id is None else None
                if kept is not None:  # found again: same alert, not notified twice
                    ep.alert_id, ep.notified = kept.id, True
                    ep.notified_severity = kept.severity
            notes.extend(_save(s, run, state))
        gone = [a.id for a in old.values()]
        if gone:
            s.execute(delete(AlertRow).where(AlertRow.id.in_(gone)))
        state_store.save_state(s, run.id, state.to_json())
        log.info("run %s: late steps arrived; diagnosed again from %d steps", run.id, len(steps))
        return notes

    def notify(self, notes: list[dict[str, Any]]) -> None:
        """Send notifications (call after the transaction committed)."""
        if notes and self.webhook is not None:
            self.webhook.send(notes)


def _save(s: Session, run: Any, state: RunState) -> list[dict[str, Any]]:
    """Write the changed episodes as alerts; returns those to notify."""
    order = {r.id: i for i, r in enumerate(RULES)}
    eps = sorted(state.episodes.values(), key=lambda e: order.get(e.rule, 99))
    notes: list[dict[str, Any]] = []
    for ep in eps:
        cause = ep.evidence.get("caused_by")
        if isinstance(cause, dict) and cause.get("alert_id") is None:
            linked = state.episodes.get(cause.get("rule", ""))
            if linked is not None and linked.alert_id is not None:
                cause["alert_id"] = linked.alert_id
                ep.dirty = True
        ep.evidence = wire(ep.evidence)
        alert_store.save_episodes(s, run.id, [ep])
        if ep.status == "open" and ep.severity in NOTIFY and _news(ep):
            escalated = ep.notified
            ep.notified, ep.notified_severity = True, ep.severity
            notes.append(_note(run, ep, escalated))
    return notes


def late(
    state: RunState,
    scalars: Mapping[str, tuple[list[int], list[float]]],
    histograms: Sequence[tuple[str, int, Mapping[str, Any]]],
) -> bool:
    """Whether the batch holds training or evaluation steps before those already diagnosed."""
    for d in timeline(scalars, histograms):
        if (d.has_train and d.step < state.step) or (d.has_eval and d.step < state.evals.last_step):
            return True
    return False


def replay_size(s: Session, run_id: str) -> int:
    """Scalar points stored for a run (what a replay would read)."""
    ids = [sid for sid, _ in points.run_series(s, run_id)]
    if not ids:
        return 0
    q = select(func.coalesce(func.sum(PointBlockRow.n), 0)).where(PointBlockRow.series_id.in_(ids))
    return int(s.scalar(q) or 0)


def stored_inputs(
    s: Session, run_id: str
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[tuple[str, int, dict]]]:
    """Every stored scalar series (step-ordered arrays) and histogram of a run."""
    scalars: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for _, key in points.run_series(s, run_id, "scalar"):
        scalars[key] = points.read_arrays(s, run_id, key)
    hists: list[tuple[str, int, dict]] = []
    for sid, key in points.run_series(s, run_id, "histogram"):
        for step, data in hist_store.read(s, sid):
            decoded = {
                k: [decode_float(x) for x in v] if isinstance(v, list) else v
                for k, v in data.items()
            }
            hists.append((key, step, decoded))
    hists.sort(key=lambda h: h[1])
    return scalars, hists


def _between(
    steps: np.ndarray, values: np.ndarray, lo: int, hi: int
) -> tuple[list[int], list[float]]:
    a = int(np.searchsorted(steps, lo, "left"))
    b = int(np.searchsorted(steps, hi, "right"))
    return steps[a:b].tolist(), values[a:b].tolist()


def _news(ep: Any) -> bool:
    """Not announced yet, or announced at a lower severity (warning -> critical)."""
    if not ep.notified:
        return True
    before = ep.notified_severity or "warning"
    return SEVERITY_RANK.get(ep.severity, 0) > SEVERITY_RANK.get(before, 0)


def _note(run: Any, ep: Any, escalated: bool = False) -> dict[str, Any]:
    return {
        "escalated": escalated,
        "id": ep.alert_id,
        "run_id": run.id,
        "run_name": run.name,
        "project": run.project,
        "rule": ep.rule,
        "severity": ep.severity,
        "step": ep.step,
        "onset_step": ep.onset_step,
        "message": ep.message,
        "remedy": ep.remedy,
        "evidence": ep.evidence,
        "evidence_labels": evidence_labels(ep.evidence),
    }
