"""Check that watched training steps never synchronise the host with the GPU.

    python -m bench.cuda_sync_check

Trains a small CNN on CUDA, watched by fitscope, and runs these under
``torch.cuda.set_sync_debug_mode("error")``, where any call that waits for
the device raises:

* plain steps (Adam, cross-entropy), with the flush that copies the recorded
  values to the host;
* gradient accumulation over 2 micro-batches with ``clip_grad_norm_``;
* AMP: ``torch.autocast`` + ``GradScaler`` with a fused Adam (the combination
  that is itself sync-free; the non-fused GradScaler reads ``found_inf`` with
  ``.item()`` on its own), including a step skipped for an inf gradient;
* an evaluation pass under ``torch.no_grad`` (loss, accuracy, confidence
  histogram, label counts);
* a step 50, where parameter norms are taken too.

The sender thread only runs after the check (its wait on the copy's CUDA event
is the one place allowed to wait).  Prints ``OK`` and exits 0, or prints what
synchronised and exits 1.  Without CUDA it prints ``SKIP`` and exits 0.
"""

# the sections below are lambdas that call steps for their effect only
# mypy: disable-error-code="func-returns-value"

from __future__ import annotations

import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

import fitscope
from fitscope._settings import ClientSettings
from fitscope.protocol import KEYS
from fitscope.testing import MockTransport


def cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),
    )


def main() -> int:
    if not torch.cuda.is_available():
        print("SKIP: no CUDA device here")
        return 0
    dev = torch.device("cuda")
    torch.manual_seed(0)
    model = cnn().to(dev)
    crit = nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    scaler = torch.amp.GradScaler("cuda", init_scale=2.0**10)
    batches = [
        (torch.randn(32, 3, 16, 16, device=dev), torch.randint(0, 10, (32,), device=dev))
        for _ in range(4)
    ]
    transport = MockTransport()  # keeps what would have reached a server
    run = fitscope.watch(
        model,
        opt,
        crit,
        transport=transport,
        settings=ClientSettings(url="http://sync-check.invalid", dir=Path(tempfile.mkdtemp())),
        interval=3600.0,  # the sender stays asleep until finish
    )
    watcher = run._watcher

    def plain(i: int) -> None:
        x, y = batches[i % 4]
        opt.zero_grad(set_to_none=True)
        crit(model(x), y).backward()
        opt.step()

    def accumulate_and_clip(i: int) -> None:
        opt.zero_grad(set_to_none=True)
        for k in range(2):
            x, y = batches[(i + k) % 4]
            (crit(model(x), y) / 2).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    def amp(i: int, overflow: bool = False) -> None:
        x, y = batches[i % 4]
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.float16):
            loss = crit(model(x), y)
        scaler.scale(loss).backward()
        if overflow:
            grad = model[0].weight.grad
            grad.view(-1)[0] = float("inf")  # type: ignore[union-attr, operator]  # device-side, no sync
        scaler.step(opt)
        scaler.update()

    def evaluate() -> None:
        model.eval()
        with torch.no_grad():
            for x, y in batches:
                crit(model(x), y)
        model.train()

    for i in range(3):  # warm-up: allocations, kernels, the first step's facts
        plain(i)
    watcher.flush()
    torch.cuda.synchronize()

    def plain_steps() -> None:
        for i in range(5):
            plain(i)
        watcher.flush()

    def accumulation() -> None:
        for i in range(3):
            accumulate_and_clip(i)

    def amp_steps() -> None:
        for i in range(4):
            amp(i, overflow=i == 1)

    def evaluation() -> None:
        evaluate()
        plain(0)
        watcher.flush()

    def to_step_50() -> None:
        for i in range(50 - watcher.step):
            plain(i)

    sections: list[tuple[str, Callable[[], object]]] = [
        ("plain steps + flush", plain_steps),
        ("accumulation + clip_grad_norm_", accumulation),
        ("AMP, fused Adam, one skipped step", amp_steps),
        ("evaluation pass", evaluation),
        ("parameter norms at step 50", to_step_50),
        ("final flush", watcher.flush),
    ]
    failed = None
    torch.cuda.set_sync_debug_mode("error")
    try:
        for name, section in sections:
            try:
                section()
            except RuntimeError as exc:
                failed = (name, exc, traceback.format_exc())
                break
        if failed is None:  # the check must be able to fail: a deliberate sync must raise
            try:
                torch.ones(1, device=dev).item()
                live = False
            except RuntimeError:
                live = True
    finally:
        torch.cuda.set_sync_debug_mode("default")
    run.finish()
    if failed is not None:
        name, err, tb = failed
        print(f"SYNC in '{name}': {err}\n{tb}")
        return 1
    if not live:
        print("INCONCLUSIVE: set_sync_debug_mode('error') did not catch a deliberate .item()")
        return 1
    keys = (KEYS.TRAIN_LOSS, KEYS.GRAD_NORM_TOTAL, KEYS.TRAIN_STEP_SKIPPED, KEYS.VAL_ACCURACY)
    pts = {k: len(transport.points(k)) for k in keys}
    delivered = ", ".join(f"{k} {n}" for k, n in pts.items())
    print(
        f"OK: {watcher.step} watched steps, an evaluation pass and the flushes ran under "
        f"set_sync_debug_mode('error') with no host-device sync (torch {torch.__version__}, "
        f"{torch.cuda.get_device_name()}); delivered afterwards: {delivered}"
    )
    expected = pts[KEYS.TRAIN_LOSS] == watcher.step and pts[KEYS.TRAIN_STEP_SKIPPED] == 1
    return 0 if expected else 1


if __name__ == "__main__":
    sys.exit(main())
