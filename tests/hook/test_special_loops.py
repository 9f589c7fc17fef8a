"""Loops that need more than the two lines' defaults: AMP, torch.compile, Hugging Face style
models, a functional loss, and DDP."""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from tests.support.hook import classification_data, close, mlp, run_script


@pytest.mark.parametrize("fused", [False, True], ids=["foreach", "fused"])
def test_amp_grad_scaler_records_skipped_steps_and_unscaled_norms(app_server, fused):
    torch.manual_seed(6)
    x, y = classification_data(96)
    model, crit = mlp(), nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, fused=fused)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    run = app_server.watch(model, opt, crit)
    true_norms, scales = [], []
    for s in range(6):
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = crit(model(x[s * 16 : s * 16 + 16]), y[s * 16 : s * 16 + 16])
        scaler.scale(loss).backward()
        if s == 2:  # an overflow: GradScaler must skip this step
            model[0].weight.grad[0, 0] = float("inf")
        scale = scaler.get_scale()
        scales.append(scale)
        true_norms.append(
            math.sqrt(sum(float(p.grad.norm()) ** 2 for p in model.parameters())) / scale
        )
        scaler.step(opt)
        scaler.update()
    run.finish()
    steps, skipped = app_server.series(run.id, "train/step_skipped")
    assert (steps, skipped) == ([3], [1.0])
    assert app_server.series(run.id, "amp/scale") == (list(range(1, 7)), scales)
    assert scales[3] == scales[2] / 2
    steps, norms = app_server.series(run.id, "grad_norm/total")
    assert steps == list(range(1, 7)) and norms[2] == math.inf
    for i in (0, 1, 3, 4, 5):
        assert close(norms[i], true_norms[i], rel=1e-4), (i, norms[i], true_norms[i])
    assert app_server.counts(run.id)["train/loss"] == 6
    assert app_server.config(run.id)["fitscope"]["amp"] is True


def _four_steps(model, opt, crit, x, y) -> list[float]:  # noqa: ANN001
    losses = []
    for i in range(0, 64, 16):
        opt.zero_grad()
        loss = crit(model(x[i : i + 16]), y[i : i + 16])
        loss.backward()
        losses.append(loss.item())
        opt.step()
    return losses


def test_compiled_model(app_server):
    torch.manual_seed(7)
    x, y = classification_data(64)
    xv, yv = classification_data(32, seed=3)
    model = torch.compile(mlp())
    crit = nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = app_server.watch(model, opt, crit)
    losses = _four_steps(model, opt, crit, x, y)
    model.eval()
    with torch.no_grad():
        crit(model(xv), yv)
    run.finish()
    counts = app_server.counts(run.id)
    assert counts["grad_norm/0"] == counts["grad_norm/2"] == 4  # no "_orig_mod." in the names
    assert all(
        close(a, b) for a, b in zip(app_server.series(run.id, "train/loss")[1], losses, strict=True)
    )
    assert counts["val/accuracy"] == 1
    fs = app_server.config(run.id)["fitscope"]
    assert fs["compiled"] is True and fs["model_class"] == "Sequential"


@pytest.mark.filterwarnings("ignore:`torch.jit.script.*is deprecated:DeprecationWarning")
@pytest.mark.parametrize("wrap", ["torch.jit.script", "torch.compile"])
def test_scripted_or_compiled_criterion(app_server, wrap):
    """The criterion's loss is taken by a wrapper around its ``forward``: it must work
    for criteria whose ``forward`` is not a plain method, and be gone after finish."""
    torch.manual_seed(7)
    x, y = classification_data(64)
    model = mlp()
    crit = nn.CrossEntropyLoss()
    crit = torch.jit.script(crit) if wrap == "torch.jit.script" else torch.compile(crit)
    before = dict(vars(crit)).get("forward")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = app_server.watch(model, opt, crit)
    losses = _four_steps(model, opt, crit, x, y)
    run.finish()
    assert dict(vars(crit)).get("forward") is before
    got = app_server.series(run.id, "train/loss")[1]
    assert len(got) == 4 and all(close(a, b) for a, b in zip(got, losses, strict=True))
    assert app_server.counts(run.id)["train/labels"] == 1


@dataclass
class SequenceClassifierOutput:
    loss: torch.Tensor | None
    logits: torch.Tensor


class HFStyleModel(nn.Module):
    """Like a Hugging Face model: labels as a keyword, an output object with .loss and .logits."""

    def __init__(self) -> None:
        super().__init__()
        self.classifier = mlp()

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None):  # noqa: ANN201
        logits = self.classifier(input_ids)
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


def test_hugging_face_style_model_without_criterion(app_server):
    torch.manual_seed(8)
    x, y = classification_data(64)
    xv, yv = classification_data(40, seed=9)
    model = HFStyleModel()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    run = app_server.watch(model, opt)  # no criterion
    losses = []
    for i in range(0, 64, 16):
        out = model(input_ids=x[i : i + 16], labels=y[i : i + 16])
        out.loss.backward()
        losses.append(out.loss.item())
        opt.step()
        opt.zero_grad()
    model.eval()
    with torch.inference_mode():
        out = model(input_ids=xv, labels=yv)
        expected_acc = float((out.logits.argmax(1) == yv).float().mean())
        expected_loss = float(out.loss)
        model(input_ids=xv)  # a prediction without labels is not an evaluation batch
    run.finish()
    steps, got = app_server.series(run.id, "train/loss")
    assert steps == [1, 2, 3, 4]
    assert all(close(a, b) for a, b in zip(got, losses, strict=True))
    assert app_server.series(run.id, "val/loss")[1] == pytest.approx([expected_loss], rel=1e-5)
    assert app_server.series(run.id, "val/accuracy")[1] == pytest.approx([expected_acc])
    assert sum(app_server.histograms(run.id, "val/confidence")[0]["counts"]) == 40
    counts = app_server.counts(run.id)
    assert counts["grad_norm/classifier.0"] == 4
    fs = app_server.config(run.id)["fitscope"]
    assert fs["num_classes"] == 3 and fs["batch_size"] == 16


def test_functional_loss_logged_by_the_user(app_server):
    torch.manual_seed(9)
    x, y = classification_data(64)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = app_server.watch(model, opt)  # no criterion module: the loss is a function call
    losses = []
    for i in range(0, 64, 8):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x[i : i + 8]), y[i : i + 8])
        loss.backward()
        opt.step()
        run.log({"train/loss": loss, "train/lr_x10": opt.param_groups[0]["lr"] * 10})
        losses.append(loss.item())
    run.finish()
    steps, got = app_server.series(run.id, "train/loss")
    assert steps == list(range(1, 9))
    assert all(close(a, b) for a, b in zip(got, losses, strict=True))
    assert app_server.series(run.id, "train/lr_x10") == (list(range(1, 9)), [1.0] * 8)
    assert app_server.counts(run.id)["grad_norm/total"] == 8


DDP_SCRIPT = textwrap.dedent("""
    import os, sys
    import torch
    import torch.distributed as dist
    import torch.multiprocessing as mp
    from torch import nn
    import fitscope

    def worker(rank, port):
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
        torch.manual_seed(0)
        model = nn.parallel.DistributedDataParallel(
            nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 3)))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        crit = nn.CrossEntropyLoss()
        run = fitscope.watch(model, opt, crit, project="ddp", name="ddp")
        print("RANK", rank, run.active, flush=True)
        g = torch.Generator().manual_seed(rank)
        for _ in range(5):
            x, y = torch.randn(8, 10, generator=g), torch.randint(0, 3, (8,), generator=g)
            opt.zero_grad()
            crit(model(x), y).backward()
            opt.step()
        run.finish()
        dist.barrier()
        dist.destroy_process_group()

    if __name__ == "__main__":
        mp.start_processes(worker, args=(int(os.environ["DDP_PORT"]),), nprocs=2, start_method="fork")
""")


def test_ddp_on_cpu_sends_from_rank_zero_only_unless_all_ranks_are_asked_for(server, tmp_path):
    from tests.support.servers import free_port

    proc = run_script(DDP_SCRIPT, tmp_path, server.url, timeout=180, DDP_PORT=str(free_port()))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "RANK 1 False" in proc.stdout and "RANK 0 True" in proc.stdout
    runs = server.api("/api/v1/runs")
    assert [r["name"] for r in runs] == ["ddp"]

    proc = run_script(
        DDP_SCRIPT,
        tmp_path,
        server.url,
        timeout=180,
        DDP_PORT=str(free_port()),
        FITSCOPE_ALL_RANKS="1",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = server.api("/api/v1/runs")
    assert sorted(r["name"] for r in runs) == ["ddp", "ddp-rank0", "ddp-rank1"]
    for r in runs:
        keys = {k["key"]: k["count"] for k in server.api(f"/api/v1/runs/{r['id']}/keys")}
        assert keys["train/loss"] == 5 and keys["grad_norm/0"] == 5  # no "module." prefix
        fs = server.api(f"/api/v1/runs/{r['id']}")["config"]["fitscope"]
        assert fs["world_size"] == 2 and fs["batch_size"] == 16
        assert r["status"] == "finished"
