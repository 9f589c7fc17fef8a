"""The diagnosis service: runs the engine on each stored batch, in the batch's transaction.

State and alerts are written in the same transaction as the points, so a batch that is
rolled back (and resent by the hook) leaves no trace in the diagnosis either. A bug in a
rule is logged and skips diagnosis for that batch; it never loses the batch's points.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy.orm import Session

from ..storage import alerts as alert_store
from ..storage import diagnosis as state_store
from ..storage import runs
from . import overrides
from .base import SEVERITY_RANK, Facts
from .engine import Engine
from .labels import evidence_labels
from .rules import RULES
from .state import RunState, wire
from .webhook import Webhook

log = logging.getLogger("fitscope.diagnosis")
NOTIFY = ("warning", "critical")


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
            Engine(params, disabled).process(state, Facts.from_config(config), scalars, histograms)
        except Exception:
            log.exception("diagnosis failed for run %s; this batch was stored undiagnosed", run_id)
            return []
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
            alert_store.save_episodes(s, run_id, [ep])
            if ep.status == "open" and ep.severity in NOTIFY and _news(ep):
                escalated = ep.notified
                ep.notified, ep.notified_severity = True, ep.severity
                notes.append(_note(run, ep, escalated))
        state_store.save_state(s, run_id, state.to_json())
        return notes

    def notify(self, notes: list[dict[str, Any]]) -> None:
        """Send notifications (call after the transaction committed)."""
        if notes and self.webhook is not None:
            self.webhook.send(notes)


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
