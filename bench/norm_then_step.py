"""Does a gradient-norm pass make the optimizer's update that follows it cheaper?

    python -m bench.norm_then_step [--steps 3000] [--threads 1]

The hook's norm pass is the first read of freshly written gradients; Adam reads
them again right after.  On the CPU that first read can bring them into cache,
so part of the pass's cost comes back as a faster ``optimizer.step()``.  This
trains the MLP and the CNN of ``hook_overhead.py`` with steps in pairs, one
with a ``torch._foreach_norm`` before the update and one without (in a random
order), and reports the mean difference in the update's CPU time, with its
standard error.  It explains why ``hook_overhead.py``'s "in hooks" column,
which times only the hook's own code, can exceed its "regions" estimate.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from bench.hook_overhead import cnn, mlp


def measure(
    make: Callable[[], nn.Module], shape: tuple[int, ...], steps: int
) -> tuple[float, float, float, float]:
    """(norm pass, update after it - update without, its SE, update), all in seconds."""
    clock = time.thread_time
    torch.manual_seed(0)
    model = make()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    crit = nn.CrossEntropyLoss()
    data = [(torch.randn(64, *shape), torch.randint(0, 10, (64,))) for _ in range(8)]
    update: dict[bool, list[float]] = {True: [], False: []}
    norm: list[float] = []
    order = random.Random(0)
    for i in range(steps):
        x, y = data[i % len(data)]
        for with_norm in order.sample((True, False), 2):
            opt.zero_grad(set_to_none=True)
            crit(model(x), y).backward()
            if with_norm:
                t0 = clock()
                torch._foreach_norm([p.grad for p in model.parameters() if p.grad is not None])
                norm.append(clock() - t0)
            t0 = clock()
            opt.step()
            update[with_norm].append(clock() - t0)
    warm = steps // 10
    diff = [a - b for a, b in zip(update[True][warm:], update[False][warm:], strict=True)]
    se = statistics.stdev(diff) / len(diff) ** 0.5
    return statistics.mean(norm[warm:]), statistics.mean(diff), se, statistics.mean(update[False])


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--steps", type=int, default=3000, help="pairs of steps per model")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.steps} pairs")
    print(f"{'model':6} {'norm pass us':>12} {'update us':>10} {'update after norm - without':>32}")
    for name, make, shape in (("mlp", mlp, (784,)), ("cnn", cnn, (1, 28, 28))):
        n, d, se, u = measure(make, shape, args.steps)
        print(f"{name:6} {n * 1e6:12.1f} {u * 1e6:10.1f} {d * 1e6:+20.1f} ± {se * 1e6:.1f} us")


if __name__ == "__main__":
    main()
