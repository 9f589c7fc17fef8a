"""The scenarios and their ground truth, fixed before any threshold was tuned.

Each scenario is a small, real PyTorch training run on generated data. ``expected`` are the
rules that must fire (the fault's diagnosis); ``allowed`` are rules that may also fire because
they are true consequences of the fault; any other warning or critical alert is a false alarm.
``onset`` is the step at which the fault starts: a number, or "val_min" (the step of the lowest
validation loss, read from the run's own data afterwards). Healthy runs expect nothing and allow
nothing above info.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import torch
from torch import nn

import fitscope

from .lib import K, blobs, evaluate, fit, mlp, record_labels, start


@dataclass
class Scenario:
    id: str
    what: str
    train: Callable[[str, str], str]  # (scenario id, url) -> run id
    expected: frozenset[str] = frozenset()
    allowed: frozenset[str] = frozenset()
    onset: int | str = 1
    chain: tuple[str, ...] = field(default=())  # caused_by links that must lead to chain[-1]

    @property
    def healthy(self) -> bool:
        return not self.expected


SCENARIOS: dict[str, Scenario] = {}
STUCK = frozenset({"not_learning", "plateau", "underfitting", "early_stop", "underconfidence"})


def scenario(
    what: str,
    expected: tuple[str, ...] = (),
    allowed: Collection[str] = (),
    onset: int | str = 1,
    chain: tuple[str, ...] = (),
) -> Callable:
    def deco(fn: Callable[[str, str], str]) -> Callable[[str, str], str]:
        sid = fn.__name__
        SCENARIOS[sid] = Scenario(
            sid, what, fn, frozenset(expected), frozenset(allowed), onset, chain
        )
        return fn

    return deco


def _data(n_train: int = 800, n_val: int = 500, **kw: object) -> tuple:
    tr = blobs(n_train, sample_seed=1, **kw)  # type: ignore[arg-type]
    va = blobs(n_val, sample_seed=2, **kw)  # type: ignore[arg-type]
    return tr, va


# -- healthy ------------------------------------------------------------------------------
@scenario("SGD+momentum, step decay x0.1 at epoch 12")
def healthy_sgd_step(sid: str, url: str) -> str:
    tr, va = _data(sep=0.9)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=12, gamma=0.1)
    crit = nn.CrossEntropyLoss()
    run = start(model, opt, crit, sid, url, 32)
    fit(run, model, opt, crit, tr, va, epochs=20, sched=sched)
    return run.id


@scenario("AdamW + dropout, linear warm-up then cosine decay, per-step schedule")
def healthy_adamw_warmup_cosine(sid: str, url: str) -> str:
    tr, va = _data(sep=0.9)
    model = mlp(hidden=128, dropout=0.2)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-2)
    steps = 20 * 25
    warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.01, total_iters=60)
    cos = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps - 60)
    sched = torch.optim.lr_scheduler.SequentialLR(opt, [warm, cos], milestones=[60])
    crit = nn.CrossEntropyLoss()
    run = start(model, opt, crit, sid, url, 32)
    fit(run, model, opt, crit, tr, va, epochs=20, sched=sched, sched_per_step=True)
    return run.id


@scenario("batch 8 (noisy gradients), 10% label noise, weight decay")
def healthy_small_batch_noise(sid: str, url: str) -> str:
    tr, va = _data(n_train=600, sep=0.9, noise=0.1)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=1e-3)
    crit = nn.CrossEntropyLoss()
    run = start(model, opt, crit, sid, url, 8)
    fit(run, model, opt, crit, tr, va, epochs=8, batch=8)
    return run.id


@scenario("label smoothing 0.1 (lower confidence is expected)")
def healthy_label_smoothing(sid: str, url: str) -> str:
    tr, va = _data(sep=0.9)
    model = mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    crit = nn.CrossEntropyLoss(label_smoothing=0.1)
    run = start(model, opt, crit, sid, url, 32)
    fit(run, model, opt, crit, tr, va, epochs=20)
    return run.id


@scenario("separable data trained to a near-zero loss")
def healthy_converged_tiny_loss(sid: str, url: str) -> str:
    tr, va = _data(sep=3.0)
    model = mlp()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    crit = nn.CrossEntropyLoss()
    run = start(model, opt, crit, sid, url, 32)
    fit(run, model, opt, crit, tr, va, epochs=30)
    return run.id


@scenario("batch 512 with a linear warm-up and the LR scaled up")
def healthy_large_batch_warmup(sid: str, url: str) -> str:
    tr, va = _data(n_train=8192, sep=0.9)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.4, momentum=0.9)
    sched = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.05, total_iters=40)
    crit = nn.CrossEntropyLoss()
    run = start(model, opt, crit, sid, url, 512)
    fit(run, model, opt, crit, tr, va, epochs=25, batch=512, sched=sched, sched_per_step=True)
    return run.id


@scenario("cyclical learning rate (triangular, SGD)")
def healthy_cyclic_lr(sid: str, url: str) -> str:
    tr, va = _data(sep=0.9)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    sched = torch.optim.lr_scheduler.CyclicLR(opt, base_lr=0.002, max_lr=0.05, step_size_up=50)
    crit = nn.CrossEntropyLoss()
    run = start(model, opt, crit, sid, url, 32)
    fit(run, model, opt, crit, tr, va, epochs=20, sched=sched, sched_per_step=True)
    return run.id


# -- faulty -------------------------------------------------------------------------------
@scenario(
    "150 noisy training samples, 2x256 MLP, Adam, no regularisation",
    ("overfitting",),
    ("overconfidence", "early_stop", "plateau"),
    onset="val_min",
)
def fault_overfitting(sid: str, url: str) -> str:
    tr, va = _data(n_train=160, sep=0.9, noise=0.2)
    model = mlp(hidden=256)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    crit = nn.CrossEntropyLoss()
    run = start(model, opt, crit, sid, url, 16)
    fit(run, model, opt, crit, tr, va, epochs=40, batch=16)
    return run.id


@scenario(
    "overlapping classes, wide MLP trained long with Adam: confident but often wrong",
    ("overconfidence",),
    ("overfitting", "early_stop", "plateau"),
)
def fault_overconfidence(sid: str, url: str) -> str:
    tr, va = _data(n_train=400, sep=0.6)
    model = mlp(hidden=256)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    crit = nn.CrossEntropyLoss()
    run = start(model, opt, crit, sid, url, 16)
    fit(run, model, opt, crit, tr, va, epochs=30, batch=16)
    return run.id


@scenario(
    "constant LR long past the best validation loss",
    ("early_stop",),
    ("overfitting", "overconfidence", "plateau"),
    onset="val_min",
)
def fault_train_too_long(sid: str, url: str) -> str:
    tr, va = _data(n_train=400, sep=0.8)
    model = mlp(hidden=32)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    crit = nn.CrossEntropyLoss()
    run = start(model, opt, crit, sid, url, 16)
    fit(run, model, opt, crit, tr, va, epochs=40, batch=16)
    return run.id


@scenario(
    "Adam at a constant lr 0.05: the loss stalls at 0.27 (a decay would bring it to 0.2)",
    ("plateau",),
    ("early_stop", "underfitting", "overfitting", "overconfidence"),
    onset=150,
)
def fault_plateau_no_decay(sid: str, url: str) -> str:
    tr, va = _data(n_train=4000, sep=0.7)
    model = mlp(hidden=32)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    crit = nn.CrossEntropyLoss()
    run = start(model, opt, crit, sid, url, 32)
    fit(run, model, opt, crit, tr, va, epochs=6)
    return run.id


@scenario(
    "linear model on 4-D classes made of 3 scattered clusters each (an MLP gets 72%, it 56%)",
    ("underfitting",),
    ("plateau", "early_stop"),
)
def fault_underfitting(sid: str, url: str) -> str:
    tr, va = _data(sep=1.5, per_class=3, d=4)
    model = nn.Sequential(nn.Linear(4, K))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    crit = nn.CrossEntropyLoss()
    run = start(model, opt, crit, sid, url, 32)
    fit(run, model, opt, crit, tr, va, epochs=20)
    return run.id


@scenario("labels independent of the inputs (shuffled)", ("not_learning",), STUCK)
def fault_random_labels(sid: str, url: str) -> str:
    (x, _), (xv, _) = _data(n_train=4000, sep=1.0)
    g = torch.Generator().manual_seed(5)
    y, yv = torch.randint(K, (len(x),), generator=g), torch.randint(K, (len(xv),), generator=g)
    model = mlp(hidden=16)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    crit = nn.CrossEntropyLoss()
    run = start(model, opt, crit, sid, url, 64)
    fit(run, model, opt, crit, (x, y), (xv, yv), epochs=5, batch=64)
    return run.id


@scenario(
    "10 sigmoid layers, default init, plain SGD",
    ("vanishing_gradients",),
    STUCK,
)
def fault_vanishing_sigmoid(sid: str, url: str) -> str:
    tr, va = _data(sep=1.0)
    model = mlp(hidden=32, depth=10, act=nn.Sigmoid)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    crit = nn.CrossEntropyLoss()
    run = start(model, opt, crit, sid, url, 32)
    fit(run, model, opt, crit, tr, va, epochs=16)
    return run.id


@scenario(
    "first layer's bias initialised to -10: every ReLU dead",
    ("dead_units",),
    STUCK | {"vanishing_gradients"},
)
def fault_dead_relu(sid: str, url: str) -> str:
    tr, va = _data(sep=1.0)
    model = mlp()
    with torch.no_grad():
        model[0].bias.fill_(-10.0)  # type: ignore[operator]
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    crit = nn.CrossEntropyLoss()
    run = start(model, opt, crit, sid, url, 32)
    fit(run, model, opt, crit, tr, va, epochs=12)
    return run.id


@scenario(
    "optimizer.zero_grad() between backward() and step()",
    ("no_update",),
    STUCK,
)
def fault_zero_grad_before_step(sid: str, url: str) -> str:
    tr, va = _data(sep=1.0)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    crit = nn.CrossEntropyLoss()
    run = start(model, opt, crit, sid, url, 32)
    fit(run, model, opt, crit, tr, va, epochs=8, order="zero_after_backward")
    return run.id


@scenario(
    "optimizer.zero_grad() never called",
    ("grad_accumulating",),
    STUCK | {"divergence", "exploding_gradients", "non_finite", "overconfidence"},
)
def fault_missing_zero_grad(sid: str, url: str) -> str:
    tr, va = _data(sep=1.0)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    crit = nn.CrossEntropyLoss()
    run = start(model, opt, crit, sid, url, 32)
    fit(run, model, opt, crit, tr, va, epochs=10, order="no_zero_grad")
    return run.id


@scenario(
    "SGD learning rate far too high",
    ("divergence",),
    STUCK | {"exploding_gradients", "non_finite", "overconfidence", "lr_too_high"},
)
def fault_lr_too_high(sid: str, url: str) -> str:
    tr, va = _data(sep=1.0)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.6, momentum=0.9)
    crit = nn.CrossEntropyLoss()
    run = start(model, opt, crit, sid, url, 32)
    fit(run, model, opt, crit, tr, va, epochs=12)
    return run.id


@scenario(
    "a hand-written loss and torch.autograd.grad: no loss fitscope can see, said once",
    ("no_loss_captured",),
    STUCK,
    onset=20,
)
def fault_no_loss_captured(sid: str, url: str) -> str:
    tr, va = _data(sep=1.0)
    model = mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    run = fitscope.watch(model, opt, project="scenarios", name=sid, url=url)
    x, y = tr
    params = [p for p in model.parameters()]
    for i in range(0, 60 * 32, 32):
        xb, yb = x[i % len(x) : i % len(x) + 32], y[i % len(y) : i % len(y) + 32]
        logp = torch.log_softmax(model(xb), dim=1)
        loss = -logp[torch.arange(len(yb)), yb].mean()  # no F.* loss, no backward()
        for p, g in zip(params, torch.autograd.grad(loss, params), strict=True):
            p.grad = g
        opt.step()
        opt.zero_grad()
    run.finish()
    return run.id


@scenario(
    "corrupted inputs (x40) in every 4th batch from step 300",
    ("exploding_gradients",),
    # update_size: the bad batches' updates really are a third of a layer's norm (linked to
    # the exploding gradients as their cause)
    {"divergence", "non_finite", "early_stop", "plateau", "overfitting", "update_size"},
    onset=300,
)
def fault_bad_batches(sid: str, url: str) -> str:
    tr, va = _data(sep=1.0)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    crit = nn.CrossEntropyLoss()

    def corrupt(step: int, x: torch.Tensor, y: torch.Tensor) -> tuple:
        return (x * 40, y) if step >= 300 and step % 4 == 0 else (x, y)

    run = start(model, opt, crit, sid, url, 32)
    fit(run, model, opt, crit, tr, va, epochs=16, corrupt=corrupt)
    return run.id


@scenario("a NaN in the input batch at step 250", ("non_finite",), (), onset=250)
def fault_nan_input(sid: str, url: str) -> str:
    tr, va = _data(sep=1.0)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    crit = nn.CrossEntropyLoss()

    def corrupt(step: int, x: torch.Tensor, y: torch.Tensor) -> tuple:
        if step == 250:
            x = x.clone()
            x[0, 0] = float("nan")
        return x, y

    run = start(model, opt, crit, sid, url, 32)
    fit(run, model, opt, crit, tr, va, epochs=14, corrupt=corrupt)
    return run.id


@scenario(
    "learning rate set to 1e4 at step 250 (scheduler bug) -> explosion -> NaN",
    ("lr_jump", "non_finite"),
    {"exploding_gradients", "divergence"},
    onset=250,
    chain=("non_finite", "lr_jump"),
)
def fault_lr_jump_to_nan(sid: str, url: str) -> str:
    tr, va = _data(sep=1.0)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    crit = nn.CrossEntropyLoss()

    def at_step(step: int) -> None:
        if step == 250:
            for g in opt.param_groups:
                g["lr"] = 1e4

    run = start(model, opt, crit, sid, url, 32)
    fit(run, model, opt, crit, tr, va, epochs=14, at_step=at_step)
    return run.id


@scenario("Adam with weight_decay=1e-2 (coupled L2)", ("adam_weight_decay",))
def fault_adam_weight_decay(sid: str, url: str) -> str:
    tr, va = _data(sep=0.9)
    model = mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-2)
    crit = nn.CrossEntropyLoss()
    run = start(model, opt, crit, sid, url, 32)
    fit(run, model, opt, crit, tr, va, epochs=10)
    return run.id


@scenario("batch 512, no warm-up", ("large_batch_no_warmup",), ("plateau", "early_stop"))
def fault_large_batch_no_warmup(sid: str, url: str) -> str:
    tr, va = _data(n_train=8192, sep=0.9)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    crit = nn.CrossEntropyLoss()
    run = start(model, opt, crit, sid, url, 512)
    fit(run, model, opt, crit, tr, va, epochs=10, batch=512)
    return run.id


@scenario(
    "validation set with 70% of class 0 (training: balanced)",
    ("label_shift",),
    ("overconfidence", "underconfidence", "overfitting", "early_stop", "plateau"),
    onset=25,
)
def fault_label_shift(sid: str, url: str) -> str:
    tr = blobs(800, sep=0.9, sample_seed=1)
    va = blobs(500, sep=0.9, sample_seed=2, probs=[0.7, 0.1, 0.1, 0.1])
    model = mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    crit = nn.CrossEntropyLoss()
    run = start(model, opt, crit, sid, url, 32)
    fit(run, model, opt, crit, tr, va, epochs=8)
    return run.id


@scenario(
    "softmax layer before CrossEntropyLoss (double softmax)",
    ("underconfidence",),
    ("underfitting", "plateau", "early_stop", "not_learning"),
)
def fault_double_softmax(sid: str, url: str) -> str:
    tr, va = _data(sep=1.0)
    model = nn.Sequential(mlp(), nn.Softmax(dim=1))
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    crit = nn.CrossEntropyLoss()
    run = start(model, opt, crit, sid, url, 32)
    fit(run, model, opt, crit, tr, va, epochs=16)
    return run.id


@scenario(
    "Adam at lr=1: the loss jumps at the first updates, the ReLUs die, the loss sits at ln K",
    ("lr_too_high",),
    STUCK | {"dead_units", "vanishing_gradients", "divergence", "no_update", "exploding_gradients"},
)
def fault_lr_collapse(sid: str, url: str) -> str:
    tr, va = _data(sep=1.0)
    model = mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1.0)
    crit = nn.CrossEntropyLoss()
    run = start(model, opt, crit, sid, url, 32)
    fit(run, model, opt, crit, tr, va, epochs=8)
    return run.id


@scenario(
    "a warm-up that never ends: LambdaLR ramp without a cap (x200 by the end)",
    ("warmup_runaway",),
    STUCK
    | {"divergence", "exploding_gradients", "non_finite", "lr_too_high", "overfitting"}
    | {"dead_units", "vanishing_gradients", "no_update", "overconfidence"},
)
def fault_warmup_never_ends(sid: str, url: str) -> str:
    tr, va = _data(sep=0.9)
    model = mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (s + 1) / 2)  # meant: min(1, ...)
    crit = nn.CrossEntropyLoss()
    run = start(model, opt, crit, sid, url, 32)
    fit(run, model, opt, crit, tr, va, epochs=16, sched=sched, sched_per_step=True)
    return run.id


@scenario(
    "output layer initialised 40x too large: first loss far above ln K",
    ("initial_loss",),
    ("overconfidence", "plateau", "early_stop"),
)
def fault_bad_init(sid: str, url: str) -> str:
    tr, va = _data(sep=0.9)
    model = mlp()
    with torch.no_grad():
        model[-1].weight.mul_(40.0)  # type: ignore[operator]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    crit = nn.CrossEntropyLoss()
    run = start(model, opt, crit, sid, url, 32)
    fit(run, model, opt, crit, tr, va, epochs=8)
    return run.id


__all__ = ["SCENARIOS", "Scenario", "evaluate", "record_labels"]
