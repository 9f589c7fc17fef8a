"""A small demo training run: an MLP on synthetic clustered data, watched by fitscope.

    python -m fitscope.demo [--url URL] [--epochs N] [--delay SECONDS]

The data is generated (no download); the model overfits mildly towards the end,
which is what the dashboard is there to show.
"""

from __future__ import annotations

import argparse
import os
import time
import urllib.request

from .protocol import paths


def make_data(n: int = 3000, features: int = 20, classes: int = 5, seed: int = 0):  # type: ignore[no-untyped-def]
    import torch

    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, features, generator=g) * 1.6
    y = torch.randint(0, classes, (n,), generator=g)
    x = centers[y] + torch.randn(n, features, generator=g) * 2.0
    flip = torch.rand(n, generator=g) < 0.1  # some label noise, so there is something to overfit
    y = torch.where(flip, torch.randint(0, classes, (n,), generator=g), y)
    split = int(n * 0.6)
    return (x[:split], y[:split]), (x[split:], y[split:])


def wait_for(url: str, seconds: float = 15.0) -> bool:
    """True once ``url`` answers its health check, False after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(f"{url}{paths.HEALTH}", timeout=1):
                return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.25)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``fitscope demo``'s description and options (``python -m fitscope.demo`` takes the same)."""
    p.description = (
        "Train a small MLP on generated data (no download), watched by fitscope; "
        "it overfits mildly towards the end, which is what the dashboard is there to show. "
        "Needs torch."
    )
    p.add_argument(
        "--url",
        default=None,
        help="server address (default: FITSCOPE_URL or http://127.0.0.1:7007)",
    )
    p.add_argument("--epochs", type=int, default=60, help="epochs to train (default 60)")
    p.add_argument(
        "--delay",
        type=float,
        default=0.02,
        help="seconds to sleep per step, so the curves can be watched (default 0.02)",
    )
    p.add_argument("--name", default=None, help="run name (default demo-mlp)")
    p.add_argument("--parent", type=int, default=None, help=argparse.SUPPRESS)
    p.set_defaults(fn=run_demo)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="fitscope demo")
    add_arguments(p)
    run_demo(p.parse_args(argv))


def run_demo(args: argparse.Namespace) -> None:
    """Train the demo model, streaming to the server at ``args.url``."""
    from ._settings import ClientSettings

    url = ClientSettings.from_env(args.url).url
    if not wait_for(url, 15.0 if args.url else 2.0):
        print(
            f"fitscope demo: no server answers at {url}; start one with `fitscope serve` "
            "(until then the data is kept on disk, and `fitscope sync` sends it later)",
            flush=True,
        )
    import torch
    from torch import nn

    import fitscope

    torch.manual_seed(0)
    (xtr, ytr), (xva, yva) = make_data()
    model = nn.Sequential(
        nn.Linear(20, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 5)
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    criterion = nn.CrossEntropyLoss()

    run = fitscope.watch(
        model,
        optimizer,
        criterion,
        project="demo",
        name=args.name or "demo-mlp",
        config={"epochs": args.epochs, "batch_size": 64, "lr": 2e-3, "hidden": 256},
        url=args.url,
    )
    print(f"fitscope demo: streaming to {run.url}", flush=True)
    for _epoch in range(args.epochs):
        if args.parent is not None and os.getppid() != args.parent:
            break  # started by `fitscope serve --demo`, which has stopped
        model.train()
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), 64):
            idx = perm[i : i + 64]
            optimizer.zero_grad()
            loss = criterion(model(xtr[idx]), ytr[idx])
            loss.backward()
            optimizer.step()
            if args.delay:
                time.sleep(args.delay)
        scheduler.step()
        model.eval()
        with torch.no_grad():
            for i in range(0, len(xva), 256):
                criterion(model(xva[i : i + 256]), yva[i : i + 256])
    run.finish()
    print(f"fitscope demo: finished; see {run.url}", flush=True)


if __name__ == "__main__":
    main()
