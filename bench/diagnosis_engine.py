"""How much the diagnosis engine costs per training step, and whether that grows with the run.

    python -m bench.diagnosis_engine [--steps 20000] [--batch 100] [--layers 20]

Feeds a synthetic run (loss, total and per-layer gradient norms, LR, an evaluation every 250
steps) through the engine in batches, with the JSON round trip the server does per batch, and
prints microseconds per step for the first and the last tenth of the run and the state size.
"""

from __future__ import annotations

import argparse
import math
import random
import time

import orjson

from fitscope.protocol import KEYS, PREFIXES
from fitscope_server.diagnosis import Engine, Facts, RunState


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--layers", type=int, default=20)
    a = ap.parse_args()
    rnd = random.Random(0)
    layers = {str(i): 1000 for i in range(a.layers)}
    facts = Facts(num_classes=10, hooked=True, layers=layers)
    engine, doc = Engine(), RunState().to_json()
    times: list[float] = []
    cpu = 0.0
    for lo in range(1, a.steps + 1, a.batch):
        steps = list(range(lo, min(a.steps, lo + a.batch - 1) + 1))
        loss = [2.3 * math.exp(-s / 3000) + 0.1 + 0.05 * rnd.random() for s in steps]
        sc = {KEYS.TRAIN_LOSS: (steps, loss), KEYS.LR_FIRST: (steps, [0.1] * len(steps))}
        g = [1 + 0.3 * rnd.random() for _ in steps]
        sc[KEYS.GRAD_NORM_TOTAL] = (steps, g)
        for name in layers:
            sc[f"{PREFIXES.GRAD_NORM}{name}"] = (steps, [x / a.layers for x in g])
        ev = [s for s in steps if s % 250 == 0]
        if ev:
            sc[KEYS.VAL_LOSS] = (ev, [loss[steps.index(s)] + 0.1 for s in ev])
        t, c = time.perf_counter(), time.process_time()
        state = RunState.from_json(orjson.loads(orjson.dumps(doc)))
        engine.process(state, facts, sc, [])
        doc = state.to_json()
        size = len(orjson.dumps(doc))
        times.append((time.perf_counter() - t) / len(steps))
        cpu += time.process_time() - c
    k = max(1, len(times) // 10)
    first, last = sum(times[:k]) / k, sum(times[-k:]) / k
    print(f"steps {a.steps}, batch {a.batch}, layers {a.layers}")
    print(
        f"us/step first tenth {first * 1e6:.0f}, last tenth {last * 1e6:.0f} (ratio {last / first:.2f})"
    )
    print(f"state size {size:,} bytes")
    # CPU time is the figure to compare on a shared machine (wall time includes waiting)
    print(f"CPU us/step over the whole run {cpu / a.steps * 1e6:.1f}")


if __name__ == "__main__":
    main()
