"""The hook never raises into the loop: odd criteria, odd outputs, odd models, its own bugs."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import fitscope
from tests.support.hook import classification_data, close, mlp


class OddCriterion(nn.Module):
    """Returns whatever it was built to return, whatever it is given."""

    def __init__(self, make) -> None:  # noqa: ANN001
        super().__init__()
        self.make = make

    def forward(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        return self.make(*args, **kwargs)


def _train(model, opt, crit, x, y, steps: int = 4, kwargs: bool = False) -> None:  # noqa: ANN001
    for i in range(steps):
        opt.zero_grad()
        out = model(x[i * 8 : i * 8 + 8])
        target = y[i * 8 : i * 8 + 8]
        loss = crit(input=out, target=target) if kwargs else crit(out, target)
        if isinstance(loss, tuple):
            loss = loss[0]
        if isinstance(loss, dict):
            loss = loss["loss"]
        if isinstance(loss, torch.Tensor) and loss.requires_grad:
            loss.mean().backward()
        opt.step()


ODD = {
    "tuple": lambda o, t: (nn.functional.cross_entropy(o, t), {"aux": 1}),
    "dict": lambda o, t: {"loss": nn.functional.cross_entropy(o, t)},
    "none": lambda o, t: None,
    "float": lambda o, t: 1.5,
    "vector": lambda o, t: nn.functional.cross_entropy(o, t, reduction="none"),
    "string": lambda o, t: "loss",
    "int tensor": lambda o, t: torch.tensor(3),
    "nan": lambda o, t: nn.functional.cross_entropy(o, t) * float("nan"),
}


@pytest.mark.parametrize("kind", list(ODD))
def test_odd_criterion_outputs(app_server, kind):
    x, y = classification_data(64)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    crit = OddCriterion(ODD[kind])
    run = app_server.watch(model, opt, crit)
    _train(model, opt, crit, x, y)
    model.eval()
    with torch.no_grad():
        crit(model(x[:16]), y[:16])
    run.finish()
    counts = app_server.counts(run.id)
    assert run.step == 4
    if kind not in ("none", "float", "string", "int tensor"):
        assert counts["grad_norm/total"] == 4
    if kind in ("vector", "nan", "int tensor"):
        assert counts["train/loss"] == 4 and counts["val/loss"] == 1
    if kind == "nan":
        assert all(math.isnan(v) for v in app_server.series(run.id, "train/loss")[1])
    if kind == "vector":
        expected = float(nn.functional.cross_entropy(model(x[:16]), y[:16]).detach())
        assert close(app_server.series(run.id, "val/loss")[1][0], expected, rel=1e-5)


def test_criterion_called_with_keywords(app_server):
    x, y = classification_data(64)
    model, crit = mlp(), nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    run = app_server.watch(model, opt, crit)
    _train(model, opt, crit, x, y, kwargs=True)
    run.finish()
    assert app_server.counts(run.id)["train/loss"] == 4
    assert app_server.config(run.id)["fitscope"]["num_classes"] == 3


def test_model_without_parameters(app_server):
    x, y = classification_data(64)
    head = nn.Linear(10, 3)
    model = nn.Sequential(nn.ReLU())  # the weights live elsewhere
    crit = nn.CrossEntropyLoss()
    opt = torch.optim.SGD(head.parameters(), lr=0.1)
    run = app_server.watch(model, opt, crit)
    for i in range(4):
        opt.zero_grad()
        crit(head(model(x[i * 8 : i * 8 + 8])), y[i * 8 : i * 8 + 8]).backward()
        opt.step()
    run.finish()
    counts = app_server.counts(run.id)
    assert counts["train/loss"] == 4 and "grad_norm/total" not in counts
    assert app_server.config(run.id)["fitscope"]["parameters"] == 0


def test_ignore_index_and_out_of_range_labels(app_server):
    x, y = classification_data(64)
    y = y.clone()
    y[::5] = -100  # ignored by the loss
    model, crit = mlp(), nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    run = app_server.watch(model, opt, crit)
    _train(model, opt, crit, x, y)
    model.eval()
    with torch.no_grad():
        logits = model(x)
        crit(logits, y)
    run.finish()
    keep = y != -100
    acc = float((logits.argmax(1)[keep] == y[keep]).float().mean())
    assert close(
        app_server.series(run.id, "val/loss")[1][0], float(crit(logits, y).detach()), rel=1e-5
    )
    assert close(app_server.series(run.id, "val/accuracy")[1][0], acc)
    assert sum(app_server.histograms(run.id, "val/confidence")[0]["counts"]) == int(keep.sum())
    labels = app_server.histograms(run.id, "train/labels")[0]["counts"]
    assert labels == torch.bincount(y[:32][y[:32] >= 0], minlength=3).tolist()


def test_per_position_targets_and_regression_and_binary(app_server):
    g = torch.Generator().manual_seed(0)
    # segmentation-like: logits [N, C, L], targets [N, L]
    logits = torch.randn(6, 4, 5, generator=g)
    target = torch.randint(0, 4, (6, 5), generator=g)
    conv = nn.Conv1d(4, 4, 1)
    opt = torch.optim.SGD(conv.parameters(), lr=0.1)
    crit = nn.CrossEntropyLoss()
    run = app_server.watch(conv, opt, crit)
    conv.eval()
    with torch.no_grad():
        out = conv(logits)
        crit(out, target)
    run.finish()
    acc = float((out.argmax(1) == target).float().mean())
    assert close(app_server.series(run.id, "val/accuracy")[1][0], acc)
    assert sum(app_server.histograms(run.id, "val/confidence")[0]["counts"]) == 30

    reg = nn.Linear(3, 1)
    opt = torch.optim.SGD(reg.parameters(), lr=0.1)
    run = app_server.watch(reg, opt, nn.MSELoss())
    xr, yr = torch.randn(8, 3, generator=g), torch.randn(8, 1, generator=g)
    nn.MSELoss()(reg(xr), yr).backward()
    opt.step()
    reg.eval()
    with torch.no_grad():
        run._watcher.criterion(reg(xr), yr)
    run.finish()
    counts = app_server.counts(run.id)
    assert counts["val/loss"] == 1 and "val/accuracy" not in counts and "train/labels" not in counts

    binary = nn.Linear(3, 1)
    crit = nn.BCEWithLogitsLoss()
    opt = torch.optim.SGD(binary.parameters(), lr=0.1)
    run = app_server.watch(binary, opt, crit)
    yb = (xr[:, 0] > 0).float().unsqueeze(1)
    crit(binary(xr), yb).backward()
    opt.step()
    binary.eval()
    with torch.no_grad():
        p = torch.sigmoid(binary(xr))
        crit(binary(xr), yb)
    run.finish()
    acc = float(((p > 0.5).float() == yb).float().mean())
    assert close(app_server.series(run.id, "val/accuracy")[1][0], acc)
    assert app_server.config(run.id)["fitscope"]["num_classes"] == 2
    assert sum(app_server.histograms(run.id, "train/labels")[0]["counts"]) == 8


def test_empty_evaluation_batch_adds_nothing(app_server):
    x, y = classification_data(32)
    model, crit = mlp(), nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = app_server.watch(model, opt, crit)
    model.eval()
    with torch.no_grad():
        crit(model(x[:0]), y[:0])  # NaN for an empty batch
        crit(model(x), y)
    run.finish()
    got = app_server.series(run.id, "val/loss")[1][0]
    assert close(got, float(crit(model(x), y).detach()), rel=1e-5)


def test_an_internal_error_switches_off_one_hook_and_says_so_once(app_server, capfd, monkeypatch):
    from fitscope._watch import Watcher

    def broken(self):  # noqa: ANN001, ANN202
        raise ZeroDivisionError("simulated bug")

    monkeypatch.setattr(Watcher, "_grad_norms", broken)
    x, y = classification_data(64)
    model, crit = mlp(), nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = app_server.watch(model, opt, crit)
    _train(model, opt, crit, x, y)
    run.finish()
    err = capfd.readouterr().err
    assert err.count("simulated bug") == 1 and "training continues" in err
    assert app_server.counts(run.id)["train/loss"] == 4  # the criterion hook still works


def test_watch_with_nonsense_arguments_does_not_raise(app_server, capfd):
    run = app_server.watch("not a model", 42, object())
    run.log({"still": 1.0})
    run.finish()
    assert "could not attach hooks" in capfd.readouterr().err
    assert app_server.counts(run.id) == {"still": 1}


def test_an_optimizer_torch_does_not_know(app_server, capfd):
    class HandRolledSGD:
        def __init__(self, params) -> None:  # noqa: ANN001
            self.params = list(params)

        def step(self) -> None:
            with torch.no_grad():
                for p in self.params:
                    p -= 0.1 * p.grad

        def zero_grad(self) -> None:
            for p in self.params:
                p.grad = None

    x, y = classification_data(64)
    model, crit = mlp(), nn.CrossEntropyLoss()
    opt = HandRolledSGD(model.parameters())
    run = app_server.watch(model, opt, crit)
    _train(model, opt, crit, x, y)
    run.finish()
    assert "cannot hook HandRolledSGD.step" in capfd.readouterr().err
    assert app_server.series(run.id, "train/loss")[0] == [1, 2, 3, 4]


def test_log_takes_odd_values_without_raising(app_server, capfd):
    run = app_server.init()
    run.log(
        {
            "ok": 1,
            "nan": float("nan"),
            "inf": float("inf"),
            "tensor": torch.tensor([2.5]),
            "big tensor": torch.ones(3),
            "text": "hello",
            "none": None,
            "flag": True,
            "list": [1, 2],
        }
    )
    run.log({"later": 2.0}, step="7")  # type: ignore[arg-type]
    run.log({"bad step": 1.0}, step="x")  # type: ignore[arg-type]
    run.finish()
    run.log({"after finish": 1.0})
    counts = app_server.counts(run.id)
    assert counts == {"ok": 1, "nan": 1, "inf": 1, "tensor": 1, "later": 1}
    assert app_server.series(run.id, "nan")[1][0] != app_server.series(run.id, "nan")[1][0]
    assert app_server.series(run.id, "inf")[1] == [math.inf]
    assert app_server.series(run.id, "later")[0] == [7]
    err = capfd.readouterr().err
    assert "'text' is a str" in err and "'big tensor' is a Tensor" in err


def test_fitscope_init_without_torch_imported_does_not_need_it(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys, fitscope\n"
        "run = fitscope.init(url='http://127.0.0.1:9')\n"
        "run.log({'a': 1.0})\n"
        "assert 'torch' not in sys.modules, 'importing torch is the user\\'s choice'\n"
        "run.finish(timeout=0.2)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={"FITSCOPE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


def test_two_runs_watching_two_models_keep_their_own_data(app_server):
    x, y = classification_data(64)
    a, b = mlp(), mlp()
    crit_a, crit_b = nn.CrossEntropyLoss(), nn.CrossEntropyLoss()
    opt_a = torch.optim.SGD(a.parameters(), lr=0.1)
    opt_b = torch.optim.SGD(b.parameters(), lr=0.1)
    run_a = app_server.watch(a, opt_a, crit_a)
    run_b = app_server.watch(b, opt_b, crit_b)
    _train(a, opt_a, crit_a, x, y, steps=3)
    _train(b, opt_b, crit_b, x, y, steps=5)
    opt_b.zero_grad()
    crit_b(b(x[:8]), y[:8]).backward()
    torch.nn.utils.clip_grad_norm_(b.parameters(), 0.5)  # clipping b must not touch a's record
    opt_b.step()
    run_a.finish()
    run_b.finish()
    assert app_server.counts(run_a.id)["grad_norm/total"] == 3
    assert app_server.counts(run_b.id)["grad_norm/total"] == 6
    assert app_server.config(run_a.id)["fitscope"]["grad_clip"] is None
    assert app_server.config(run_b.id)["fitscope"]["grad_clip"] == 0.5
    assert fitscope  # the public module is what the tests drive
