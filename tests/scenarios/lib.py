"""Building blocks of the scenarios: generated data, small models, one training loop.

Everything a scenario trains on is generated here from a seed; nothing is downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

import fitscope

K = 4  # classes
D = 16  # features
# a different seed re-draws the samples and the initial weights (not the class centres), to
# check by hand that the results do not hang on one lucky draw: FITSCOPE_SCENARIO_SEED=1
SEED = int(os.environ.get("FITSCOPE_SCENARIO_SEED", "0"))


def blobs(
    n: int,
    *,
    sep: float = 1.0,
    per_class: int = 1,
    seed: int = 0,
    sample_seed: int = 1,
    probs: list[float] | None = None,
    noise: float = 0.0,
    k: int = K,
    d: int = D,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian clusters: ``per_class`` centres per class (fixed by ``seed``), unit noise,
    labels flipped to a random class with probability ``noise``."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(k * per_class, d, generator=g) * sep
    s = torch.Generator().manual_seed(sample_seed + 1000 * SEED)
    p = torch.tensor(probs if probs is not None else [1.0 / k] * k)
    y = torch.multinomial(p, n, replacement=True, generator=s)
    j = torch.randint(per_class, (n,), generator=s)
    x = centers[y * per_class + j] + torch.randn(n, d, generator=s)
    if noise > 0:
        flip = torch.rand(n, generator=s) < noise
        y = torch.where(flip, torch.randint(k, (n,), generator=s), y)
    return x, y


def mlp(
    d: int = D,
    hidden: int = 64,
    k: int = K,
    depth: int = 2,
    act: type = nn.ReLU,
    dropout: float = 0,
) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = d
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), act()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = hidden
    layers.append(nn.Linear(width, k))
    return nn.Sequential(*layers)


def declare(run: Any, **facts: Any) -> None:
    """Add facts the hook does not capture yet (num_classes, batch_size) to config["fitscope"].

    Stand-in for the hook's own capture: a PATCH of the same block the hook writes.
    """
    run._on_facts(facts)


def record_labels(run: Any, key: str, y: torch.Tensor, k: int = K) -> None:
    """Label counts as a histogram (what the hook's label capture records)."""
    counts = torch.bincount(y, minlength=k)[:k].float()
    run.recorder.vector("labels", key, run.step, counts)


def start(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    crit: nn.Module,
    sid: str,
    url: str,
    batch: int,
    k: int = K,
    rules: dict | None = None,
) -> Any:
    run = fitscope.watch(model, opt, crit, project="scenarios", name=sid, url=url, rules=rules)
    declare(run, num_classes=k, batch_size=batch)
    return run


def evaluate(model: nn.Module, crit: nn.Module, val: tuple[torch.Tensor, torch.Tensor]) -> None:
    model.eval()
    x, y = val
    with torch.no_grad():
        for i in range(0, len(x), 250):
            crit(model(x[i : i + 250]), y[i : i + 250])
    model.train()


def fit(
    run: Any,
    model: nn.Module,
    opt: torch.optim.Optimizer,
    crit: nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    *,
    epochs: int,
    batch: int = 32,
    sched: Any = None,
    sched_per_step: bool = False,
    order: str = "normal",
    corrupt: Callable[[int, torch.Tensor, torch.Tensor], tuple] | None = None,
    at_step: Callable[[int], None] | None = None,
    k: int = K,
    seed: int = 0,
) -> None:
    """Plain mini-batch training with one evaluation pass per epoch.

    ``order`` injects loop bugs: "zero_after_backward" (gradients wiped before the step),
    "no_zero_grad" (gradients never cleared). ``corrupt(step, x, y)`` alters a batch,
    ``at_step(step)`` runs before each step (e.g. to set a wrong learning rate).
    """
    g = torch.Generator().manual_seed(seed + SEED)
    x, y = train
    step = 0
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        model.train()
        for i in range(0, len(x) - batch + 1, batch):
            idx = perm[i : i + batch]
            xb, yb = x[idx], y[idx]
            if corrupt is not None:
                xb, yb = corrupt(step + 1, xb, yb)
            if at_step is not None:
                at_step(step + 1)
            if order == "normal":
                opt.zero_grad()
            loss = crit(model(xb), yb)
            loss.backward()
            if order == "zero_after_backward":
                opt.zero_grad()
            opt.step()
            step += 1
            if sched is not None and sched_per_step:
                sched.step()
        record_labels(run, "train/labels", y, k)
        evaluate(model, crit, val)
        record_labels(run, "val/labels", val[1], k)
        if sched is not None and not sched_per_step:
            sched.step()
