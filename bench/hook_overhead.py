"""How much a watched training step costs compared with a bare one, on the CPU.

    python -m bench.hook_overhead [--pairs 31] [--steps 40] [--threads 1]

For each model (an MLP 784-512-512-10 and a small CNN, batch 64, Adam, with an
``nn.CrossEntropyLoss`` module passed to ``watch``; and "mlp-F", the same MLP
ending in ``log_softmax`` with ``F.nll_loss`` called in the loop and no criterion
passed, so the loss is captured by the ``torch.nn.functional`` and ``backward()``
wrappers) one model, optimizer and criterion are trained with steps in rotations of three,
in random order: a bare step, a watched step (fitscope's hooks attached for just that step;
the sender thread running with ``fitscope.testing.MockTransport``, which accepts
every request like a healthy server, so JSON and gzip are paid), and a bare step with one extra
``torch._foreach_norm`` over the gradients, timed on its own.  Sharing one
model keeps memory placement and optimizer state identical for the variants.

Step cost is the training thread's CPU time (``time.thread_time``), which
other processes' load does not inflate; each block of ``--steps`` rotations
gives one mean per variant, and the overhead is the median over ``--pairs``
blocks of (watched - bare).

On a shared machine the whole step is too noisy to resolve the CNN's overhead
(the difference of two 14 ms steps varies by ~1.3 ms; the overhead is ~0.1 ms:
the ratio's "±" shows it), so each step is also timed over the only places the
hook runs: the loss call, ``loss.backward()`` where the hook wraps it (mlp-F:
without a criterion the loss is matched there) and ``optimizer.step()`` (where
the norm pass, the row and any flush happen).  "regions" is the mean over all
rotations of (watched - bare) there, with its standard error; forward (and, for
the criterion models, backward), which the hook does not touch, stay out of it.
The background thread's CPU time is reported
separately (it runs beside training, not inside the step), as is the median
wall-clock difference.  The CPU time inside fitscope's hook code (the
optimizer hook, and the criterion wrapper less the criterion itself) is timed
in as many extra blocks afterwards, so those timers do not inflate the
overhead.  Target: overhead <= 1.5 x the norm pass.

The hooks are attached just before each watched step and removed after it,
which real training never does (it attaches once).  Attaching has after-effects
on the next step that are not the hook's per-step cost: for mlp-F it patches
``torch.Tensor.backward``, and changing a class attribute makes Python drop its
cached attribute lookups for every tensor and parameter, which the next step
pays again (``python -m bench.class_attr_change``: 6-11 us, SE 4-6 us, in
the MLP's ``optimizer.step()`` alone); it also leaves the caches cold.  So
every step, bare and norm-pass steps included, starts right after the same
set-up work: the hooks are attached, and for the steps that are not watched
removed again, before it begins.

Python's cyclic garbage collector is off while blocks are timed and runs between
blocks, as ``timeit`` does: attaching and detaching the hooks around every watched
step (which real training never does) leaves cyclic garbage, and a collection
(45 ms for a full one here) lands in whichever step allocates next.  What the hook
costs the collector in real use is counted afterwards instead ("gc/1000": collections
per 1000 steps with the hooks attached once, mostly gen-0 ones of ~0.1 ms).  ``--gc``
keeps the collector on while timing.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import fitscope
from fitscope._settings import ClientSettings
from fitscope.testing import MockTransport

GC_STEPS = 500  # steps of each kind for the garbage-collection count


def mlp() -> nn.Module:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 512),
        nn.ReLU(),
        nn.Linear(512, 512),
        nn.ReLU(),
        nn.Linear(512, 10),
    )


def cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 7 * 7, 10),
    )


def _sender_cpu(run: Any) -> float:
    """CPU seconds of the hook's background threads (the spool writer and the network)."""
    threads = [getattr(run.sender, "_thread", None), getattr(run.sender, "_net", None)]
    return sum(_thread_cpu(t) for t in threads if t is not None)


def _thread_cpu(thread: Any) -> float:
    """CPU seconds used so far by another thread (Linux; NaN where unknown)."""
    try:
        return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    except (AttributeError, OSError, TypeError):
        return float("nan")


def mlp_functional() -> nn.Module:
    return nn.Sequential(mlp(), nn.LogSoftmax(dim=1))


def bench(
    name: str,
    make: Any,
    shape: tuple,
    pairs: int,
    steps: int,
    tmp: Path,
    null: bool = False,
    functional: bool = False,
    keep_gc: bool = False,
) -> dict:
    torch.manual_seed(0)
    model = make()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    crit: Any = F.nll_loss if functional else nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(1)
    data = [
        (torch.randn(64, *shape, generator=g), torch.randint(0, 10, (64,), generator=g))
        for _ in range(8)
    ]
    settings = ClientSettings(url="http://127.0.0.1:9", dir=tmp)
    run = fitscope.watch(
        model,
        opt,
        None if functional else crit,
        project="bench",
        transport=MockTransport(),  # answers like a healthy server
        settings=settings,
    )
    watcher = run._watcher
    watcher._detach_hooks()
    clock = time.thread_time  # CPU time of this thread: blind to other processes' load
    inside = [0.0]  # CPU time spent in fitscope's own hook code

    def timed(fn: Any) -> Any:
        def call(*args: Any) -> Any:
            t0 = clock()
            try:
                return fn(*args)
            finally:
                inside[0] += clock() - t0

        return call

    def timed_loss_wrapper(make: Any) -> Any:
        """The criterion wrapper, timed without the criterion's own forward."""

        def make_timed(forward: Any) -> Any:
            in_forward = [0.0]

            def forward_timed(*args: Any, **kwargs: Any) -> Any:
                t0 = clock()
                try:
                    return forward(*args, **kwargs)
                finally:
                    in_forward[0] += clock() - t0

            wrapper = make(forward_timed)

            def call(*args: Any, **kwargs: Any) -> Any:
                t0, f0 = clock(), in_forward[0]
                try:
                    return wrapper(*args, **kwargs)
                finally:
                    inside[0] += clock() - t0 - (in_forward[0] - f0)

            return call

        return make_timed

    wraps_backward = watcher.wants_backward  # the hook also runs inside loss.backward()

    def step(x: Any, y: Any, norm: list[float] | None = None) -> float:
        """One training step; returns the CPU time of the places the hook runs: the loss call,
        ``backward()`` where the hook wraps it, and the update."""
        opt.zero_grad(set_to_none=True)
        out = model(x)
        r0 = clock()
        loss = F.nll_loss(out, y) if functional else crit(out, y)
        r1 = clock()
        del out
        b0 = clock()
        loss.backward()
        if wraps_backward:
            r1 += clock() - b0
        if norm is not None:
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            t0 = clock()
            torch._foreach_norm(grads)
            norm.append(clock() - t0)
        r2 = clock()
        opt.step()
        return r1 - r0 + clock() - r2

    order = random.Random(0)

    regions: list[float] = []  # watched - bare within one rotation, hook regions only

    def rotation(i: int, sums: dict[str, float], norm: list[float]) -> None:
        # the three variants in a random order, so no variant always follows another
        x, y = data[i % len(data)]
        region = {}
        for key in order.sample(("bare", "watched", "norm"), 3):
            hooked = key == "watched" and not null
            # every step starts right after the same set-up work (see the module docstring)
            watcher._attach()
            if not hooked:
                watcher._detach_hooks()
            if key == "norm":
                step(x, y, norm)
                continue
            w0, c0 = time.perf_counter(), clock()
            region[key] = step(x, y)
            sums[key] += clock() - c0
            sums["wall_" + key] += time.perf_counter() - w0
            if hooked:
                watcher._detach_hooks()
        regions.append(region["watched"] - region["bare"])

    def between_blocks() -> None:
        if not keep_gc:
            gc.collect()  # outside the timed steps (see the module docstring)

    if not keep_gc:
        gc.disable()
    warm: list[float] = []
    for i in range(steps):
        rotation(i, dict.fromkeys(("bare", "watched", "wall_bare", "wall_watched"), 0.0), warm)
    sender_cpu = _sender_cpu(run)
    blocks: dict[str, list[float]] = {
        k: [] for k in ("bare", "watched", "wall_bare", "wall_watched")
    }
    norm_times: list[float] = []
    regions.clear()
    for _ in range(pairs):
        between_blocks()
        sums = dict.fromkeys(blocks, 0.0)
        for i in range(steps):
            rotation(i, sums, norm_times)
        for key in blocks:
            blocks[key].append(sums[key] / steps)
    sender_cpu = _sender_cpu(run) - sender_cpu
    region_overhead = statistics.mean(regions)
    region_se = statistics.stdev(regions) / len(regions) ** 0.5
    # time spent inside the hooks, in blocks of their own: the timers would inflate the
    # overhead measured above if they were on there (both are looked up at attach)
    watcher._on_step = timed(watcher._on_step)
    if functional:  # the functional-loss and backward() wrappers call these
        watcher.on_functional = timed(watcher.on_functional)
        watcher.before_backward = timed(watcher.before_backward)
        watcher.after_backward = timed(watcher.after_backward)
    elif hasattr(watcher, "_loss_wrapper"):
        watcher._loss_wrapper = timed_loss_wrapper(watcher._loss_wrapper)
    else:  # fitscope before 2026-11-29: a forward hook on the criterion (for comparisons)
        watcher._on_loss = timed(watcher._on_loss)
    inside[0] = 0.0
    for _ in range(pairs):
        between_blocks()
        for i in range(steps):
            rotation(i, dict.fromkeys(blocks, 0.0), [])
    in_hooks = inside[0] / (pairs * steps)
    gc.enable()
    # real use, collector on: hooks attached once; collections per 1000 steps, bare then watched
    collections = []
    for hooked in (False, True):
        if hooked:
            watcher._attach()
        gc.collect()
        before = sum(g["collections"] for g in gc.get_stats())
        for i in range(GC_STEPS):
            step(*data[i % len(data)])
        collections.append(
            (sum(g["collections"] for g in gc.get_stats()) - before) * 1000 / GC_STEPS
        )
    run.finish()
    med = {k: statistics.median(v) for k, v in blocks.items()}
    diffs = [w - b for w, b in zip(blocks["watched"], blocks["bare"], strict=True)]
    overhead = statistics.median(diffs)
    overhead_se = statistics.stdev(diffs) / len(diffs) ** 0.5
    wall = statistics.median(
        w - b for w, b in zip(blocks["wall_watched"], blocks["wall_bare"], strict=True)
    )
    norm = statistics.median(norm_times)
    return {
        "model": name,
        "bare_ms": med["bare"] * 1e3,
        "watched_ms": med["watched"] * 1e3,
        "overhead_pct": 100 * overhead / med["bare"],
        "norm_pct": 100 * norm / med["bare"],
        "ratio": overhead / norm,
        "ratio_se": overhead_se / norm,
        "region_ratio": region_overhead / norm,
        "region_ratio_se": region_se / norm,
        "sender_pct": 100 * sender_cpu / (pairs * steps) / med["bare"],
        "wall_pct": 100 * wall / med["wall_bare"],
        "steps": watcher.step,
        "inside_pct": 100 * in_hooks / med["bare"],
        "inside_ratio": in_hooks / norm,
        "gc_bare": collections[0],
        "gc_watched": collections[1],
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--pairs", type=int, default=31, help="blocks of rotations (>= 5)")
    ap.add_argument("--steps", type=int, default=40, help="rotations per block")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--only", choices=["mlp", "cnn", "mlp-F"], default=None)
    ap.add_argument(
        "--null",
        action="store_true",
        help="remove the hooks before every step (watched too): measures the method's bias",
    )
    ap.add_argument(
        "--gc", action="store_true", help="leave Python's garbage collector on while timing"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    models = {
        "mlp": (mlp, (784,), False),
        "cnn": (cnn, (1, 28, 28), False),
        "mlp-F": (mlp_functional, (784,), True),
    }
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), "
        f"{args.pairs} blocks x {args.steps} rotations"
    )
    print(
        f"{'model':6} {'bare ms':>8} {'watched ms':>10} {'overhead':>9} {'norm pass':>9} "
        f"{'ratio':>11} {'regions':>11} {'sender':>7} {'wall':>7} {'in hooks':>8} {'ratio':>6} "
        f"{'gc/1000':>9}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name, (make, shape, functional) in models.items():
            if args.only and name != args.only:
                continue
            r = bench(
                name, make, shape, args.pairs, args.steps, Path(tmp), args.null, functional, args.gc
            )
            print(
                f"{r['model']:6} {r['bare_ms']:8.3f} {r['watched_ms']:10.3f} "
                f"{r['overhead_pct']:8.2f}% {r['norm_pct']:8.2f}% "
                f"{r['ratio']:5.2f}±{r['ratio_se']:.2f} "
                f"{r['region_ratio']:5.2f}±{r['region_ratio_se']:.2f} "
                f"{r['sender_pct']:6.2f}% {r['wall_pct']:6.2f}% {r['inside_pct']:7.2f}% "
                f"{r['inside_ratio']:6.2f} {r['gc_bare']:4.0f}/{r['gc_watched']:<4.0f}"
            )
    print(
        "overhead: training-thread CPU per step, watched - bare; norm pass: one "
        "torch._foreach_norm over the grads;\nratio = overhead / norm pass (target <= 1.5), "
        "± the standard error of the block differences it is the median of; "
        "regions: mean (watched - bare) over the loss call, backward() where the hook wraps it "
        "(mlp-F) and optimizer.step() only, / norm pass, ± its standard error;\n"
        "sender: background-thread CPU per watched step; wall: wall-clock difference;\n"
        "in hooks: CPU time inside fitscope's hook functions per step (flush included), "
        "and its ratio to the norm pass;\n"
        "gc/1000: garbage collections per 1000 steps with the collector on and the hooks "
        "attached once, bare/watched (timing runs with it off, between blocks)"
    )


if __name__ == "__main__":
    main()
