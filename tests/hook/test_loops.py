"""Real CPU training loops, watched; what arrives at the real server app is checked value by value."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn.utils import clip_grad_norm_  # imported by name before watch, as users do

from fitscope._evalstats import CONF_BINS
from tests.support.hook import classification_data, close, mlp


def _layer_total(model: nn.Module) -> float:
    return math.sqrt(sum(float(p.grad.norm()) ** 2 for p in model.parameters()))  # type: ignore[union-attr, misc]


def _expected_eval(model: nn.Module, xv, yv):  # noqa: ANN001, ANN202
    """Loss, accuracy and 15-bin confidence histogram, computed without the watched criterion."""
    with torch.no_grad():
        logits = model(xv)
        loss = float(torch.nn.functional.cross_entropy(logits, yv))
        probs = torch.softmax(logits, dim=1)
    conf, pred = probs.max(dim=1)
    right = pred == yv
    bins = (conf * CONF_BINS).long().clamp(max=CONF_BINS - 1)
    counts = torch.bincount(bins, minlength=CONF_BINS).tolist()
    correct = torch.bincount(bins, weights=right.float(), minlength=CONF_BINS).tolist()
    conf_sum = torch.bincount(bins, weights=conf, minlength=CONF_BINS).tolist()
    return loss, float(right.float().mean()), counts, correct, conf_sum


def _eval_pass(model: nn.Module, crit: nn.Module, xv, yv, batch: int) -> None:  # noqa: ANN001
    model.eval()
    with torch.no_grad():
        for j in range(0, len(xv), batch):
            crit(model(xv[j : j + batch]), yv[j : j + batch])


def _ece(counts: list[float], correct: list[float], conf_sum: list[float]) -> float:
    n = sum(counts)
    return sum(abs(c - s) for c, s in zip(correct, conf_sum, strict=True)) / n


def test_plain_loop_records_every_signal(app_server):
    torch.manual_seed(0)
    x, y = classification_data(256)
    xv, yv = classification_data(96, seed=1)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    crit = nn.CrossEntropyLoss()
    run = app_server.watch(
        model,
        opt,
        crit,
        project="p",
        name="plain",
        config={"epochs": 2},
        rules={"overfitting": {"patience": 3}},
    )
    losses, totals, evals, pnorm1 = [], [], [], {}
    for _epoch in range(2):
        model.train()
        for i in range(0, 256, 32):  # 8 steps per epoch
            opt.zero_grad()
            loss = crit(model(x[i : i + 32]), y[i : i + 32])
            loss.backward()
            losses.append(loss.item())
            totals.append(_layer_total(model))
            if not pnorm1:  # parameter norms are taken as the step begins, before the update
                pnorm1 = {
                    k: math.sqrt(
                        float(model[k].weight.detach().norm()) ** 2
                        + float(model[k].bias.detach().norm()) ** 2
                    )
                    for k in (0, 2)
                }
            opt.step()
        evals.append(_expected_eval(model, xv, yv))
        _eval_pass(model, crit, xv, yv, 48)
    run.finish()

    counts = app_server.counts(run.id)
    for key in ("train/loss", "grad_norm/total", "grad_norm/0", "grad_norm/2", "lr/0", "wd/0"):
        assert counts[key] == 16, key
    assert counts["param_norm/total"] == 1  # step 1 (and every 50 steps)
    for key in ("val/loss", "val/accuracy", "val/confidence", "val/labels", "train/labels"):
        assert counts[key] == 2, key
    steps, values = app_server.series(run.id, "train/loss")
    assert steps == list(range(1, 17))
    assert all(close(a, b) for a, b in zip(values, losses, strict=True))
    _, gn = app_server.series(run.id, "grad_norm/total")
    assert all(close(a, b, rel=1e-4) for a, b in zip(gn, totals, strict=True))
    _, pn = app_server.series(run.id, "param_norm/0")
    assert close(pn[0], pnorm1[0], rel=1e-4)
    assert app_server.series(run.id, "wd/0")[1] == [1e-4] * 16

    vsteps, vloss = app_server.series(run.id, "val/loss")
    _, vacc = app_server.series(run.id, "val/accuracy")
    assert vsteps == [8, 16]
    hists = app_server.histograms(run.id, "val/confidence")
    for (loss, acc, cnt, cor, conf), got_loss, got_acc, h in zip(
        evals, vloss, vacc, hists, strict=True
    ):
        assert close(got_loss, loss, rel=1e-5) and close(got_acc, acc)
        assert h["counts"] == cnt and h["correct"] == [round(c) for c in cor]
        assert all(close(a, b, rel=1e-4) for a, b in zip(h["conf_sum"], conf, strict=True))
        assert close(_ece(h["counts"], h["correct"], h["conf_sum"]), _ece(cnt, cor, conf), rel=1e-4)
    train_labels = app_server.histograms(run.id, "train/labels")
    assert [h["step"] for h in train_labels] == [8, 16]
    assert train_labels[0]["counts"] == torch.bincount(y, minlength=3).tolist()
    assert train_labels[0]["edges"] == [0, 1, 2, 3]
    val_labels = app_server.histograms(run.id, "val/labels")
    assert val_labels[1]["counts"] == torch.bincount(yv, minlength=3).tolist()

    config = app_server.config(run.id)
    fs = config["fitscope"]
    assert config["epochs"] == 2
    assert fs["rules"] == {"overfitting": {"patience": 3}}
    assert fs["optimizer"]["class"] == "SGD"
    assert fs["optimizer"]["param_groups"][0]["momentum"] == 0.9
    assert fs["layers"] == {"0": 176, "2": 51} and fs["trainable_parameters"] == 227
    assert (fs["batch_size"], fs["micro_batch_size"], fs["grad_accumulation"]) == (32, 32, 1)
    assert fs["num_classes"] == 3 and fs["criterion"] == "CrossEntropyLoss"
    assert (fs["amp"], fs["grad_clip"], fs["compiled"], fs["world_size"]) == (False, None, False, 1)


def test_gradient_accumulation_averages_micro_batches(app_server):
    torch.manual_seed(1)
    x, y = classification_data(128)
    model, crit = mlp(), nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    run = app_server.watch(model, opt, crit)
    expected, totals = [], []
    for s in range(4):
        opt.zero_grad()
        micro = []
        for k in range(4):
            i = (s * 4 + k) * 8
            loss = crit(model(x[i : i + 8]), y[i : i + 8])
            (loss / 4).backward()
            micro.append(loss.item())
        expected.append(sum(micro) / 4)
        totals.append(_layer_total(model))
        opt.step()
    run.finish()
    steps, values = app_server.series(run.id, "train/loss")
    assert steps == [1, 2, 3, 4]
    assert all(close(a, b) for a, b in zip(values, expected, strict=True))
    assert all(
        close(a, b, rel=1e-4)
        for a, b in zip(app_server.series(run.id, "grad_norm/total")[1], totals, strict=True)
    )
    fs = app_server.config(run.id)["fitscope"]
    assert (fs["batch_size"], fs["micro_batch_size"], fs["grad_accumulation"]) == (32, 8, 4)


def test_clip_grad_norm_reports_the_norm_before_clipping(app_server):
    torch.manual_seed(2)
    x, y = classification_data(96)
    model, crit = mlp(), nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    run = app_server.watch(model, opt, crit)
    pre_clip = []
    for i in range(0, 96, 16):
        opt.zero_grad()
        crit(model(x[i : i + 16]), y[i : i + 16]).backward()
        pre_clip.append(float(clip_grad_norm_(model.parameters(), max_norm=0.01)))
        assert _layer_total(model) <= 0.0101  # clipping really happened
        opt.step()
    run.finish()
    _, got = app_server.series(run.id, "grad_norm/total")
    assert len(got) == 6 and min(pre_clip) > 0.02
    assert all(close(a, b, rel=1e-4) for a, b in zip(got, pre_clip, strict=True))
    assert app_server.config(run.id)["fitscope"]["grad_clip"] == 0.01


def test_schedulers_and_parameter_groups(app_server):
    torch.manual_seed(3)
    x, y = classification_data(160)
    model, crit = mlp(), nn.CrossEntropyLoss()
    opt = torch.optim.AdamW(
        [
            {"params": model[0].parameters(), "lr": 0.1, "weight_decay": 0.0},
            {"params": model[2].parameters(), "lr": 0.01, "weight_decay": 0.05},
        ]
    )
    warm = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 4))
    run = app_server.watch(model, opt, crit)
    used: list[list[float]] = []
    for i in range(0, 160, 16):
        opt.zero_grad()
        crit(model(x[i : i + 16]), y[i : i + 16]).backward()
        used.append([g["lr"] for g in opt.param_groups])
        opt.step()
        warm.step()
    run.finish()
    for group in (0, 1):
        steps, lrs = app_server.series(run.id, f"lr/{group}")
        assert steps == list(range(1, 11))
        assert all(close(a, u[group]) for a, u in zip(lrs, used, strict=True))
    assert app_server.series(run.id, "lr/0")[1][:4] == pytest.approx([0.025, 0.05, 0.075, 0.1])
    assert app_server.series(run.id, "wd/1")[1] == [0.05] * 10
    groups = app_server.config(run.id)["fitscope"]["optimizer"]["param_groups"]
    assert [g["weight_decay"] for g in groups] == [0.0, 0.05]


@pytest.mark.parametrize("iterations", [20, 300])
def test_a_loop_that_never_steps_still_records_its_losses(app_server, capfd, iterations):
    from fitscope._watch import NO_STEP_AFTER

    torch.manual_seed(4)
    x, y = classification_data(64)
    model, crit = mlp(), nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = app_server.watch(model, opt, crit)
    expected = []
    for i in range(iterations):
        opt.zero_grad()
        loss = crit(model(x[i % 4 * 16 : i % 4 * 16 + 16]), y[i % 4 * 16 : i % 4 * 16 + 16])
        loss.backward()  # ... and the optimizer.step() is forgotten
        expected.append(loss.item())
        assert len(run._watcher._micro) <= NO_STEP_AFTER  # memory stays bounded
    run.finish()
    steps, values = app_server.series(run.id, "train/loss")
    assert steps == list(range(1, iterations + 1))
    assert all(close(a, b) for a, b in zip(values, expected, strict=True))
    assert "grad_norm/total" not in app_server.counts(run.id)
    assert "optimizer.step() was never called" in capfd.readouterr().err


@pytest.mark.parametrize("mode", ["eval+no_grad", "eval+inference_mode", "train+no_grad", "eval"])
def test_evaluation_passes_in_every_mode(app_server, mode):
    torch.manual_seed(5)
    x, y = classification_data(64)
    xv, yv = classification_data(60, seed=7)
    model, crit = mlp(), nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = app_server.watch(model, opt, crit)
    expected = []
    for _epoch in range(3):
        model.train()
        for i in range(0, 64, 16):
            opt.zero_grad()
            crit(model(x[i : i + 16]), y[i : i + 16]).backward()
            opt.step()
        expected.append(_expected_eval(model, xv, yv)[:2])
        model.train(mode.startswith("train"))
        ctx = {"eval+no_grad": torch.no_grad, "eval+inference_mode": torch.inference_mode}.get(
            mode, torch.no_grad
        )
        if mode == "eval":
            ctx = torch.enable_grad
        with ctx():
            for j in range(0, 60, 20):
                crit(model(xv[j : j + 20]), yv[j : j + 20])
    run.finish()
    steps, loss = app_server.series(run.id, "val/loss")
    _, acc = app_server.series(run.id, "val/accuracy")
    assert steps == [4, 8, 12]
    for (el, ea), gl, ga in zip(expected, loss, acc, strict=True):
        assert close(gl, el, rel=1e-5) and close(ga, ea)
    assert app_server.counts(run.id)["train/loss"] == 12
