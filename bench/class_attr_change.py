"""What a change to ``torch.Tensor``'s attributes costs the next ``optimizer.step()``.

    python -m bench.class_attr_change [--pairs 12000]

Attaching fitscope's hooks to a model without a criterion module patches
``torch.Tensor.backward``.  Setting a class attribute makes Python drop the attribute
lookups it has cached for that class and its subclasses (every tensor and parameter),
so the next step looks them up again.  Real training attaches once; ``hook_overhead``
attaches around every watched step, so it gives every variant the same set-up work
(see its docstring).  This measures the effect: pairs of MLP steps in random order,
one right after ``torch.Tensor.backward = torch.Tensor.backward`` (a no-op change),
one not; the CPU time of ``optimizer.step()`` (Adam) is compared.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time

import torch
from torch import nn

from bench.hook_overhead import mlp


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=12000)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model, crit = mlp(), nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x, y = torch.randn(64, 784), torch.randint(0, 10, (64,))
    clock = time.thread_time

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        crit(model(x), y).backward()
        t0 = clock()
        opt.step()
        return clock() - t0

    for _ in range(50):
        step()
    order = random.Random(0)
    diffs = []
    gc.disable()
    for _ in range(args.pairs):
        took = {}
        for kind in order.sample(("plain", "changed"), 2):
            if kind == "changed":
                torch.Tensor.backward = torch.Tensor.backward  # type: ignore[method-assign]
            took[kind] = step()
        diffs.append(took["changed"] - took["plain"])
    gc.enable()
    mean, se = statistics.mean(diffs), statistics.stdev(diffs) / len(diffs) ** 0.5
    print(
        f"optimizer.step() right after a torch.Tensor attribute change: "
        f"{mean * 1e6:+.1f} ± {se * 1e6:.1f} us ({args.pairs} pairs, MLP, Adam)"
    )


if __name__ == "__main__":
    main()
