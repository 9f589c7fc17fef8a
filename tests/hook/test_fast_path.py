"""The hook's fast paths record exactly what its general paths record.

Each loop is trained twice from the same seed: once as users run it, once with
the fast paths switched off, so every loss and step goes through the general
code.  Every series that reaches the server must be identical, value for value,
and the first run must really have taken the fast paths.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fitscope._watch import Watcher
from tests.support.hook import AppServer, classification_data, mlp

STEPS = 120  # crosses the parameter-norm steps 50 and 100


def _plain(model, opt, crit, x, y, i):  # noqa: ANN001, ANN202
    opt.zero_grad()
    crit(model(x), y).backward()
    opt.step()


def _clipped(model, opt, crit, x, y, i):  # noqa: ANN001, ANN202
    opt.zero_grad()
    crit(model(x), y).backward()
    nn.utils.clip_grad_norm_(model.parameters(), 0.5)
    opt.step()


def _accumulated(model, opt, crit, x, y, i):  # noqa: ANN001, ANN202
    opt.zero_grad()
    for xs, ys in zip((x[:16], x[16:]), (y[:16], y[16:]), strict=True):
        (crit(model(xs), ys) / 2).backward()
    opt.step()


def _eval_every_30(model, opt, crit, x, y, i):  # noqa: ANN001, ANN202
    _plain(model, opt, crit, x, y, i)
    if i % 30 == 29:
        model.eval()
        with torch.no_grad():
            crit(model(x), y)
        model.train()


def _skips_a_step_sometimes(model, opt, crit, x, y, i):  # noqa: ANN001, ANN202
    opt.zero_grad()
    loss = crit(model(x), y)
    loss.backward()
    if i % 17 != 5:  # e.g. a user's guard against bad batches
        opt.step()


def _functional(model, opt, crit, x, y, i):  # noqa: ANN001, ANN202
    """No criterion passed to watch: F.cross_entropy, seen by the functional wrapper, and the
    loss matched at backward(); an evaluation pass now and then."""
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()
    if i % 30 == 29:
        model.eval()
        with torch.no_grad():
            F.cross_entropy(model(x), y)
        model.train()


def _functional_accumulated(model, opt, crit, x, y, i):  # noqa: ANN001, ANN202
    opt.zero_grad()
    for xs, ys in zip((x[:16], x[16:]), (y[:16], y[16:]), strict=True):
        (F.cross_entropy(model(xs), ys) / 2).backward()
    nn.utils.clip_grad_norm_(model.parameters(), 0.5)
    opt.step()


def _custom_loss(model, opt, crit, x, y, i):  # noqa: ANN001, ANN202
    """No functional loss at all: the tensor backward() is called on."""
    opt.zero_grad()
    out = model(x)
    (out.logsumexp(1) - out.gather(1, y[:, None])[:, 0]).mean().backward()
    opt.step()


FUNCTIONAL = {"functional", "functional accumulation", "custom loss"}

LOOPS: dict[str, Callable] = {
    "functional": _functional,
    "functional accumulation": _functional_accumulated,
    "custom loss": _custom_loss,
    "plain": _plain,
    "clip_grad_norm_": _clipped,
    "accumulation": _accumulated,
    "eval passes": _eval_every_30,
    "skipped steps": _skips_a_step_sometimes,
}

# loops whose steps the fast step path records (several micro-batches per step, or a loss the
# loop scales before backward(), go the general way)
FAST_STEPS = {
    "functional",
    "custom loss",
    "plain",
    "clip_grad_norm_",
    "eval passes",
    "skipped steps",
}


def _train(server: AppServer, loop: Callable, scheduler: bool, frozen_bias: bool) -> str:
    torch.manual_seed(0)
    x, y = classification_data(32 * 8)
    model = mlp()
    head, body = list(model[2].parameters()), list(model[0].parameters())
    groups: list[dict[str, Any]] = [
        {"params": body},
        {"params": head, "lr": 0.05, "weight_decay": 1e-3},
    ]
    opt = torch.optim.SGD(
        groups,
        lr=0.1,
        momentum=0.9,
    )
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=40, gamma=0.5) if scheduler else None
    crit = nn.CrossEntropyLoss()
    functional = loop in (LOOPS[k] for k in FUNCTIONAL)
    run = server.watch(model, opt, None if functional else crit, interval=0.01)
    for i in range(STEPS):
        if frozen_bias:  # a parameter without a gradient on some steps
            model[2].bias.requires_grad_(i % 10 != 3)
        b = (i % 8) * 32
        loop(model, opt, crit, x[b : b + 32], y[b : b + 32], i)
        if sched is not None:
            sched.step()
    run.finish()
    return run.id


def _everything(server: AppServer, run_id: str) -> dict:
    out: dict[str, Any] = {}
    for key in server.counts(run_id):
        if key != "time/wall":  # the clock differs between two runs
            out[key] = server.series(run_id, key)
    for key in ("train/labels", "val/confidence"):
        out[key] = server.histograms(run_id, key)
    return out


@pytest.mark.parametrize("loop", list(LOOPS))
@pytest.mark.parametrize("scheduler, frozen_bias", [(False, False), (True, True)])
def test_fast_and_general_paths_record_the_same(
    app_server,
    monkeypatch,
    loop,
    scheduler,
    frozen_bias,
):
    general_steps = []  # steps the step hook handed to the general path
    real_record_step = Watcher._record_step

    def counting(self, optimizer):  # noqa: ANN001, ANN202
        general_steps.append(self.step)
        return real_record_step(self, optimizer)

    monkeypatch.setattr(Watcher, "_record_step", counting)
    general_losses = []  # backward() losses that took the general path
    real_backward_loss = Watcher._backward_loss

    def counting_losses(self, t):  # noqa: ANN001, ANN202
        general_losses.append(self.step)
        return real_backward_loss(self, t)

    monkeypatch.setattr(Watcher, "_backward_loss", counting_losses)
    seen = []  # functional losses that took the general path
    real_seen = Watcher._seen

    def counting_seen(self, *args):  # noqa: ANN001, ANN002, ANN202
        seen.append(self.step)
        return real_seen(self, *args)

    monkeypatch.setattr(Watcher, "_seen", counting_seen)
    fast = _everything(app_server, _train(app_server, LOOPS[loop], scheduler, frozen_bias))
    steps = len(fast["train/loss"][0])
    if loop in FAST_STEPS:
        assert steps - len(general_steps) > STEPS // 2, "the fast path was hardly taken"
    if loop == "functional":  # F.cross_entropy and backward() on its loss: their fast paths
        assert len(general_losses) < STEPS // 2, "the backward() fast path was hardly taken"
        assert len(seen) < STEPS // 2, "the functional loss's fast path was hardly taken"

    def never_fast(self):  # noqa: ANN001, ANN202
        self._fast = False

    monkeypatch.setattr(Watcher, "_refresh_fast", never_fast)
    general_steps.clear()
    general = _everything(app_server, _train(app_server, LOOPS[loop], scheduler, frozen_bias))
    assert len(general_steps) == steps  # every step went the general way
    assert fast.keys() == general.keys()
    for key in fast:
        assert fast[key] == general[key], key
    assert len(fast["train/loss"][0]) == (STEPS if loop != "skipped steps" else STEPS - 7)


def test_a_tensor_learning_rate_changed_in_place_is_read_every_step(app_server):
    """A tensor lr (as torch.compile'd optimizers use) changes in place, so it can never
    be compared with what was last recorded: every step reads it again."""
    torch.manual_seed(0)
    x, y = classification_data(64)
    model, crit = mlp(), nn.CrossEntropyLoss()
    lr = torch.tensor(0.01)
    opt = torch.optim.Adam(model.parameters(), lr=lr, foreach=False)
    run = app_server.watch(model, opt, crit)
    for i in range(60):
        lr.fill_(0.01 * (i + 1))
        opt.zero_grad()
        crit(model(x[:32]), y[:32]).backward()
        opt.step()
    run.finish()
    steps, values = app_server.series(run.id, "lr/0")
    assert steps == list(range(1, 61))
    assert values == pytest.approx([0.01 * (i + 1) for i in range(60)], rel=1e-6)
    assert app_server.counts(run.id)["train/loss"] == 60
