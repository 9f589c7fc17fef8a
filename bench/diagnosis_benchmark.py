"""Fault-injection benchmark of the diagnosis rules: labelled tiny real trainings, scored.

    python -m bench.diagnosis_benchmark [--seeds 3] [--healthy-seeds 5] [--only FAULT ...] [-v]

Trains (or reads from the cache under ``tmp/diag_bench/``) the runs of ``bench/diag_runs.py``,
feeds each through the diagnosis engine in-process in batches of 25 steps (as the hook
flushes), and prints per-rule precision and recall, top-1 root-cause accuracy (the first
warning/critical alert, followed along its ``caused_by`` links, names the root cause), false
alarms on healthy runs and detection delays.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.diag_runs import Spec, Truth, ci_specs, load, specs, truth
from fitscope.protocol import KEYS
from fitscope_server.diagnosis import RULES, Engine, Facts, RunState

LOUD = ("warning", "critical")
BATCH = 25
ORDER = {r.id: i for i, r in enumerate(RULES)}


@dataclass
class Outcome:
    spec: Spec
    truth: Truth
    raised: dict[str, int] = field(default_factory=dict)  # rule -> step first raised (any severity)
    loud: dict[str, int] = field(default_factory=dict)  # rule -> step first warning/critical
    root_of_first: str | None = None
    first_loud: str | None = None
    open_at_end: set[str] = field(default_factory=set)
    eval_steps: list[int] = field(default_factory=list)
    val_min_step: int | None = None
    gl5_step: int | None = None

    @property
    def faulty(self) -> bool:
        return bool(self.truth.expected)

    @property
    def missed(self) -> list[str]:
        return [r for r in self.truth.expected if r not in self.raised]

    @property
    def false_alarms(self) -> list[str]:
        ok = set(self.truth.expected) | set(self.truth.allowed)
        return sorted(r for r in self.loud if r not in ok)

    @property
    def root_ok(self) -> bool:
        return self.root_of_first in self.truth.root

    def delay(self, rule: str, from_min: bool = False) -> float | None:
        """Steps from the fault's start to the alert; for overfitting, evaluations from the
        first evaluation where overfitting is visible (Prechelt's GL5: the 3-evaluation mean of
        the validation loss 5% above its lowest, after that lowest point), or with
        ``from_min`` from the evaluation of the lowest validation loss itself."""
        if rule not in self.raised:
            return None
        if self.truth.onset_kind == "val_min":
            start = self.val_min_step if from_min else self.gl5_step
            if start is None:
                return None
            at = self.raised[rule]
            return max(0, sum(1 for s in self.eval_steps if start < s <= at))
        start = self.truth.delays.get(rule, self.truth.onset)
        return max(0, self.raised[rule] - start)


def diagnose(run: dict[str, Any]) -> tuple[RunState, list[tuple[str, str, int]]]:
    """Feed a run to the engine in batches; returns the final state and the loud raises in order."""
    facts = Facts.from_config({"fitscope": run["facts"]})
    engine, state = Engine(), RunState()
    scalars: dict[str, tuple[list[int], list[float]]] = run["scalars"]
    hists = [tuple(h) for h in run["hists"]]
    last = max((max(ss) for ss, _ in scalars.values() if ss), default=0)
    raises: list[tuple[str, str, int]] = []
    seen: set[tuple[str, int]] = set()
    for lo in range(1, last + 1, BATCH):
        hi = lo + BATCH - 1
        sc = {}
        for key, (ss, vs) in scalars.items():
            pts = [(s, _f(v)) for s, v in zip(ss, vs, strict=True) if lo <= s <= hi]
            if pts:
                sc[key] = ([s for s, _ in pts], [v for _, v in pts])
        hs = [h for h in hists if lo <= h[1] <= hi]
        engine.process(state, facts, sc, hs)  # type: ignore[arg-type]
        batch_new = []
        for ep in state.episodes.values():
            ep_key = (ep.rule, ep.step)
            if ep.status == "open" and ep.severity in LOUD and ep_key not in seen:
                seen.add(ep_key)
                batch_new.append((ep.step, ORDER.get(ep.rule, 99), ep.rule))
        for step, _, rule in sorted(batch_new):
            raises.append((rule, state.episodes[rule].severity, step))
    return state, raises


def _f(v: Any) -> float:
    return float(v) if v is not None else math.nan


def _root(state: RunState, rule: str) -> str:
    seen = set()
    cur = rule
    while cur not in seen:
        seen.add(cur)
        ep = state.episodes.get(cur)
        cause = (ep.evidence.get("caused_by") if ep else None) or {}
        nxt = cause.get("rule") if isinstance(cause, dict) else None
        if not nxt:
            break
        cur = nxt
    return cur


def _gl5(steps: list[int], vals: list[float]) -> int | None:
    """The first evaluation after the lowest 3-evaluation mean where that mean is 5% above it."""
    means = [sum(vals[i - 2 : i + 1]) / 3 for i in range(2, len(vals))]
    if not means:
        return None
    low = min(range(len(means)), key=lambda i: means[i])
    for i in range(low + 1, len(means)):
        if means[i] > 1.05 * means[low]:
            return steps[i + 2]
    return None


def score(spec: Spec, run: dict[str, Any]) -> Outcome:
    state, raises = diagnose(run)
    out = Outcome(spec, truth(spec))
    first_seen: dict[str, int] = {}
    for rule, _, step in raises:
        out.loud.setdefault(rule, step)
    for rule, ep in state.episodes.items():
        first_seen[rule] = ep.step
    out.raised = dict(first_seen)
    for rule, step in out.loud.items():
        out.raised[rule] = min(out.raised.get(rule, step), step)
    if raises:
        out.first_loud = raises[0][0]
        out.root_of_first = _root(state, raises[0][0])
    out.open_at_end = {r for r, ep in state.episodes.items() if ep.status == "open"}
    val = run["scalars"].get(KEYS.VAL_LOSS)
    if val:
        ss, vs = val
        out.eval_steps = list(ss)
        pairs = [(v, s) for s, v in zip(ss, vs, strict=True) if v is not None and math.isfinite(v)]
        out.val_min_step = min(pairs)[1] if pairs else None
        out.gl5_step = _gl5(list(ss), [_f(v) for v in vs])
    return out


def evaluate(
    all_specs: list[Spec], verbose: bool = False, cache: Path | None = None
) -> list[Outcome]:
    outs = []
    for spec in all_specs:
        run = load(spec, cache)
        o = score(spec, run)
        outs.append(o)
        if verbose:
            bad = o.missed or o.false_alarms or (o.faulty and not o.root_ok)
            mark = "FAIL" if bad else "ok"
            print(
                f"{mark:4} {spec.id:45} loud={o.loud} first={o.first_loud}->{o.root_of_first}"
                + (f" missed={o.missed}" if o.missed else "")
                + (f" false={o.false_alarms}" if o.false_alarms else ""),
                flush=True,
            )
    return outs


@dataclass
class Summary:
    faulty: int
    healthy: int
    found: float  # share of faulty runs with every expected diagnosis
    root: float  # share of faulty runs whose first loud alert names the root cause
    healthy_false: float  # share of healthy runs with a warning/critical alert
    faulty_false: int  # faulty runs with a loud alert neither expected nor allowed
    open_ok: float  # share of stays-open faults still open at the end
    delays: dict[str, list[float]]  # fault -> delays of its first expected rule


def summarize(outs: list[Outcome]) -> Summary:
    faulty = [o for o in outs if o.faulty]
    healthy = [o for o in outs if not o.faulty]
    delays: dict[str, list[float]] = defaultdict(list)
    for o in faulty:
        for rule in o.truth.expected:
            d = o.delay(rule)
            if d is not None:
                delays[f"{o.spec.fault}:{rule}"].append(d)
            if o.truth.onset_kind == "val_min":
                d = o.delay(rule, from_min=True)
                if d is not None:
                    delays[f"{o.spec.fault}:{rule} (from the minimum)"].append(d)
    staying = [o for o in faulty if o.truth.stays_open]
    return Summary(
        faulty=len(faulty),
        healthy=len(healthy),
        found=sum(not o.missed for o in faulty) / max(len(faulty), 1),
        root=sum(o.root_ok for o in faulty) / max(len(faulty), 1),
        healthy_false=sum(bool(o.loud) for o in healthy) / max(len(healthy), 1),
        faulty_false=sum(bool(o.false_alarms) for o in faulty),
        open_ok=sum(set(o.truth.stays_open) <= o.open_at_end for o in staying)
        / max(len(staying), 1),
        delays=dict(delays),
    )


def per_rule(outs: list[Outcome]) -> list[tuple[str, int, int, int]]:
    """(rule, true positives, false positives, false negatives) over loud alerts."""
    rules = sorted({r for o in outs for r in list(o.loud) + list(o.truth.expected)})
    rows = []
    for rule in rules:
        tp = sum(1 for o in outs if rule in o.truth.expected and rule in o.raised)
        fn = sum(1 for o in outs if rule in o.truth.expected and rule not in o.raised)
        fp = sum(
            1
            for o in outs
            if rule in o.loud and rule not in o.truth.expected and rule not in o.truth.allowed
        )
        rows.append((rule, tp, fp, fn))
    return rows


def report(outs: list[Outcome]) -> str:
    s = summarize(outs)
    lines = ["| rule | precision | recall | TP | FP | FN |", "|---|---|---|---|---|---|"]
    for rule, tp, fp, fn in per_rule(outs):
        prec = f"{tp / (tp + fp):.2f}" if tp + fp else "-"
        rec = f"{tp / (tp + fn):.2f}" if tp + fn else "-"
        lines.append(f"| {rule} | {prec} | {rec} | {tp} | {fp} | {fn} |")
    lines += [
        "",
        "| fault / expected rule | runs | delay median | delay max | unit |",
        "|---|---|---|---|---|",
    ]
    for key in sorted(s.delays):
        ds = s.delays[key]
        unit = "evaluations" if "overfitting" in key else "steps"
        lines.append(f"| {key} | {len(ds)} | {statistics.median(ds):g} | {max(ds):g} | {unit} |")
    lines += [
        "",
        f"runs: {s.faulty} faulty, {s.healthy} healthy",
        f"expected diagnosis found: {s.found:.1%} of faulty runs (target >= 95%)",
        f"first warning/critical names the root cause: {s.root:.1%} (target >= 90%)",
        f"healthy runs with a warning/critical alert: {s.healthy_false:.1%} (target <= 2%)",
        f"faulty runs with an unexpected warning/critical alert: {s.faulty_false}",
        f"structural faults still open at the end: {s.open_ok:.0%}",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--healthy-seeds", type=int, default=5)
    ap.add_argument("--only", nargs="*", help="faults (or 'healthy') to run")
    ap.add_argument("--ci", action="store_true", help="only the representative part run in CI")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    todo = ci_specs() if a.ci else specs(a.seeds, a.healthy_seeds)
    if a.only:
        todo = [s for s in todo if s.fault in a.only]
    t0 = time.monotonic()
    outs = evaluate(todo, a.verbose)
    print(report(outs))
    print(f"{len(outs)} runs in {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
