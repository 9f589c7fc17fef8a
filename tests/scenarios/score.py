"""Scoring a scenario's alerts against its ground truth, and the summary table."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .catalog import Scenario

LOUD = ("warning", "critical")


@dataclass
class Score:
    scenario: Scenario
    alerts: list[dict[str, Any]]
    onset: int | None
    detected: dict[str, int] = field(default_factory=dict)  # expected rule -> step raised
    missed: list[str] = field(default_factory=list)
    false_alarms: list[dict[str, Any]] = field(default_factory=list)
    chain_ok: bool | None = None
    seconds: float = 0.0

    @property
    def delays(self) -> list[int]:
        if self.onset is None:
            return []
        return [max(0, step - self.onset) for step in self.detected.values()]

    @property
    def ok(self) -> bool:
        return not self.missed and not self.false_alarms and self.chain_ok is not False


def score(sc: Scenario, alerts: list[dict[str, Any]], series: Callable[[str], dict]) -> Score:
    onset: int | None
    if sc.onset == "val_min":
        val = series("val/loss")
        pairs = [
            (v, s) for s, v in zip(val["steps"], val["values"], strict=True) if isinstance(v, float)
        ]
        onset = min(pairs)[1] if pairs else None
    else:
        onset = int(sc.onset)
    out = Score(sc, alerts, onset)
    by_rule: dict[str, list[dict]] = {}
    for a in alerts:
        by_rule.setdefault(a["rule"], []).append(a)
    for rule in sorted(sc.expected):
        if rule in by_rule:
            out.detected[rule] = min(a["step"] for a in by_rule[rule])
        else:
            out.missed.append(rule)
    ok = sc.expected | sc.allowed
    out.false_alarms = [a for a in alerts if a["severity"] in LOUD and a["rule"] not in ok]
    if sc.chain:
        out.chain_ok = _follows(alerts, sc.chain[0], sc.chain[-1])
    return out


def _follows(alerts: list[dict[str, Any]], start: str, root: str) -> bool:
    """Following evidence.caused_by from ``start``'s alert reaches ``root``'s alert."""
    by_id = {a["id"]: a for a in alerts}
    cur = next((a for a in alerts if a["rule"] == start), None)
    seen = set()
    while cur is not None and cur["id"] not in seen:
        if cur["rule"] == root:
            return True
        seen.add(cur["id"])
        cause = (cur.get("evidence") or {}).get("caused_by") or {}
        cur = by_id.get(cause.get("alert_id"))
    return False


def table(scores: list[Score]) -> str:
    rows = [
        "| scenario | expected | detected | false alarms (warning/critical) | info alerts | delay (steps) | s |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in scores:
        sc = s.scenario
        exp = ", ".join(sorted(sc.expected)) or "(healthy)"
        det = ", ".join(sorted(s.detected)) or "-"
        if s.missed:
            det += f" (missed: {', '.join(s.missed)})"
        if s.chain_ok is not None:
            det += " [chain ok]" if s.chain_ok else " [chain BROKEN]"
        fa = ", ".join(f"{a['rule']}@{a['step']}" for a in s.false_alarms) or "0"
        infos = ", ".join(sorted({a["rule"] for a in s.alerts if a["severity"] == "info"})) or "-"
        delay = ", ".join(str(d) for d in s.delays) or "-"
        rows.append(f"| {sc.id} | {exp} | {det} | {fa} | {infos} | {delay} | {s.seconds:.1f} |")
    faulty = [s for s in scores if not s.scenario.healthy]
    healthy = [s for s in scores if s.scenario.healthy]
    n_exp = sum(len(s.scenario.expected) for s in faulty)
    n_det = sum(len(s.detected) for s in faulty)
    delays = [d for s in faulty for d in s.delays]
    med = statistics.median(delays) if delays else float("nan")
    rows += [
        "",
        f"faulty runs: {n_det}/{n_exp} expected diagnoses detected; "
        f"{sum(len(s.false_alarms) for s in faulty)} unexpected warning/critical alerts; "
        f"median detection delay {med:g} steps",
        f"healthy runs: {sum(len(s.false_alarms) for s in healthy)} warning/critical alerts in "
        f"{len(healthy)} runs ({sum(1 for s in healthy for a in s.alerts if a['severity'] == 'info')} info)",
    ]
    return "\n".join(rows)
