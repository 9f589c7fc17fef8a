"""Series tables for rule tests: build a run's windows from plain lists, then ask one rule."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from typing import Any

from fitscope_server.diagnosis import BY_ID, Engine, Facts, RunState
from fitscope_server.diagnosis.base import Context, Finding

LN4 = math.log(4)


def decay(start: float, end: float, n: int, tau: float = 60.0, noise: float = 0.0, seed: int = 0):
    rnd = random.Random(seed)
    return [
        (end + (start - end) * math.exp(-i / tau)) * (1 + noise * rnd.uniform(-1, 1))
        for i in range(n)
    ]


def const(v: float, n: int, noise: float = 0.0, seed: int = 0) -> list[float]:
    rnd = random.Random(seed)
    return [v * (1 + noise * rnd.uniform(-1, 1)) for _ in range(n)]


def hist(n: int, acc: float, conf: float) -> dict:
    """A 15-bin confidence histogram with every prediction in the bin of ``conf``."""
    b = min(int(conf * 15), 14)
    counts, correct, conf_sum = [0.0] * 15, [0.0] * 15, [0.0] * 15
    counts[b], correct[b], conf_sum[b] = n, round(acc * n), conf * n
    return {
        "edges": [i / 15 for i in range(16)],
        "counts": counts,
        "correct": correct,
        "conf_sum": conf_sum,
    }


def build(
    loss: list[float] | None = None,
    grads: dict[str, list[float]] | None = None,
    lr: list[float] | dict[str, list[float]] | None = None,
    evals: Iterable[tuple] = (),
    params: dict[int, dict[str, float]] | None = None,
    skipped: list[float] | None = None,
    labels: tuple[Any, list[float]] | None = None,
    facts: Facts | None = None,
    batch: int = 50,
    updates: list[float] | dict[str, list[float]] | None = None,
    train_snapshots: int = 2,
    rules: bool = False,
) -> tuple[RunState, Facts]:
    """Feed series into a fresh state (steps 1..n), in batches of ``batch`` steps, with every
    rule switched off so only the windows are updated (``rules=True``: the whole engine).

    ``grads``: {"total": [...], "<layer>": [...]}; ``evals``: (step, val_loss, val_acc,
    confidence histogram or None); ``params``: {step: {layer: norm}}.
    """
    facts = facts or Facts(num_classes=4, hooked=True)
    n = max(
        len(loss or []),
        max((len(v) for v in (grads or {}).values()), default=0),
        len(lr) if isinstance(lr, list) else max((len(v) for v in (lr or {}).values()), default=0),
        max((e[0] for e in evals), default=0),
    )
    lrs = {"0": lr} if isinstance(lr, list) else (lr or {})
    evals = list(evals)
    state = RunState()
    engine = Engine() if rules else Engine(disabled=set(BY_ID))
    for lo in range(1, n + 1, batch):
        hi = min(n, lo + batch - 1)
        steps = list(range(lo, hi + 1))
        sc: dict[str, tuple[list[int], list[float]]] = {}

        def put(key: str, values: list[float] | None, steps=steps, sc=sc) -> None:  # noqa: ANN001
            if values:
                pts = [(s, values[s - 1]) for s in steps if s - 1 < len(values)]
                if pts:
                    sc[key] = ([s for s, _ in pts], [v for _, v in pts])

        put("train/loss", loss)
        for name, vals in (grads or {}).items():
            put("grad_norm/total" if name == "total" else f"grad_norm/{name}", vals)
        for g, vals in lrs.items():
            put(f"lr/{g}", vals)
        put("train/step_skipped", skipped)
        hists: list[tuple[str, int, Any]] = []
        for step, vl, va, h in (e for e in evals if lo <= e[0] <= hi):
            if vl is not None:
                sc.setdefault("val/loss", ([], []))
                sc["val/loss"][0].append(step)
                sc["val/loss"][1].append(vl)
            if va is not None:
                sc.setdefault("val/accuracy", ([], []))
                sc["val/accuracy"][0].append(step)
                sc["val/accuracy"][1].append(va)
            if h is not None:
                hists.append(("val/confidence", step, h))
        for step, norms in (params or {}).items():
            if lo <= step <= hi:
                for layer, v in norms.items():
                    sc.setdefault(f"param_norm/{layer}", ([], []))
                    sc[f"param_norm/{layer}"][0].append(step)
                    sc[f"param_norm/{layer}"][1].append(v)
        ratios = updates if isinstance(updates, dict) else {"total": updates}
        for name, ratio in ratios.items():
            put(f"update_ratio/{name}", ratio)
        if labels is not None and lo == 1:
            # training counts: a list of snapshots, or one total split into equal snapshots
            snaps = labels[0] if isinstance(labels[0][0], list) else None
            if snaps is None:
                snaps = [[c / train_snapshots for c in labels[0]]] * train_snapshots
            for i, snap in enumerate(snaps):
                hists.append(("train/labels", i + 1, {"counts": snap, "edges": []}))
            hists.append(("val/labels", len(snaps), {"counts": labels[1], "edges": []}))
        engine.process(state, facts, sc, hists)
    return state, facts


def ask(rule_id: str, state: RunState, facts: Facts, **params: float) -> Finding | None:
    rule = BY_ID[rule_id]
    p = dict(rule.params)
    p.update(params)
    step = max(state.step, state.evals.last_step, state.labels.val_step, 1)
    ctx = Context(state, facts, step)
    return rule.check(ctx, p)
