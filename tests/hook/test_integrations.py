"""The Lightning callback and the Hugging Face TrainerCallback: tiny models trained on the CPU
in a fresh interpreter, streaming to a real server.

Both frameworks are optional (the ``integrations`` extra); without them these
tests skip, saying so, even under CI.
"""

from __future__ import annotations

import importlib.util
import json
import textwrap

import pytest

from tests.support.cli import cli
from tests.support.hook import run_script


def _have(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


need_lightning = pytest.mark.skipif(
    not (_have("lightning") or _have("pytorch_lightning")),
    reason="PyTorch Lightning is not installed (pip install 'fitscope[integrations]')",
)
need_transformers = pytest.mark.skipif(
    not _have("transformers", "accelerate"),
    reason="transformers/accelerate are not installed (pip install 'fitscope[integrations]')",
)


def _run_id(proc) -> str:  # noqa: ANN001
    assert proc.returncode == 0, proc.stderr[-3000:]
    return next(ln.split()[1] for ln in proc.stdout.splitlines() if ln.startswith("RUN "))


def _counts(server, run_id: str) -> dict[str, int]:  # noqa: ANN001
    return {k["key"]: k["count"] for k in server.api(f"/api/v1/runs/{run_id}/keys")}


def _steps(server, run_id: str, key: str) -> list[int]:  # noqa: ANN001
    return server.api(f"/api/v1/runs/{run_id}/series", key=key)["steps"]


LIGHTNING_PRELUDE = textwrap.dedent("""
    import torch
    from torch import nn
    from torch.nn import functional as F
    from torch.utils.data import DataLoader, TensorDataset
    try:
        import lightning.pytorch as pl
    except ImportError:
        import pytorch_lightning as pl
    from fitscope.integrations.lightning import FitscopeCallback

    torch.manual_seed(0)
    x = torch.randn(128, 8)
    y = (x[:, 0] > 0).long()
    train = DataLoader(TensorDataset(x, y), batch_size=16)          # 8 batches per epoch
    val = DataLoader(TensorDataset(x[:64], y[:64]), batch_size=32)  # 2 batches per pass
    quiet = dict(accelerator="cpu", logger=False, enable_checkpointing=False,
                 enable_progress_bar=False, enable_model_summary=False, max_epochs=2)
""")


@need_lightning
def test_lightning_callback_with_a_criterion_module(server, tmp_path):
    code = LIGHTNING_PRELUDE + textwrap.dedent("""
        class Classifier(pl.LightningModule):
            def __init__(self, lr=0.1):
                super().__init__()
                self.save_hyperparameters()
                self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
                self.criterion = nn.CrossEntropyLoss()

            def training_step(self, batch, i):
                xb, yb = batch
                return self.criterion(self.net(xb), yb)

            def validation_step(self, batch, i):
                xb, yb = batch
                self.log("val_loss", self.criterion(self.net(xb), yb))
                self.log("val_f1", 0.5)

            def configure_optimizers(self):
                return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

        cb = FitscopeCallback(project="pl", name="criterion")
        pl.Trainer(callbacks=[cb], **quiet).fit(Classifier(), train, val)
        print("RUN", cb.run.id)
    """)
    run_id = _run_id(run_script(code, tmp_path, server.url))
    counts = _counts(server, run_id)
    for key in ("train/loss", "grad_norm/total", "lr/0"):
        assert _steps(server, run_id, key) == list(range(1, 17)), key
    # two validation passes (the sanity check is not one), each recorded once
    for key in ("val/loss", "val/accuracy", "val/f1"):
        assert _steps(server, run_id, key) == [8, 16], key
    assert counts["val/confidence"] == 2
    hist = server.api(f"/api/v1/runs/{run_id}/histograms", key="val/confidence")["histograms"]
    assert [sum(h["counts"]) for h in hist] == [64, 64]
    run = server.api(f"/api/v1/runs/{run_id}")
    assert run["status"] == "finished" and run["project"] == "pl" and run["name"] == "criterion"
    assert run["config"]["lr"] == 0.1 and run["config"]["max_epochs"] == 2
    assert run["config"]["fitscope"]["optimizer"]["class"] == "SGD"
    assert run["config"]["fitscope"]["criterion"] == "CrossEntropyLoss"


@need_lightning
def test_lightning_callback_with_a_returned_loss_and_accumulation(server, tmp_path):
    code = LIGHTNING_PRELUDE + textwrap.dedent("""
        class Functional(pl.LightningModule):
            def __init__(self):
                super().__init__()
                self.net = nn.Linear(8, 2)

            def training_step(self, batch, i):
                xb, yb = batch
                return {"loss": F.cross_entropy(self.net(xb), yb)}

            def validation_step(self, batch, i):
                xb, yb = batch
                logits = self.net(xb)
                self.log("val_acc", (logits.argmax(1) == yb).float().mean())
                return F.cross_entropy(logits, yb)

            def configure_optimizers(self):
                return torch.optim.Adam(self.parameters(), lr=0.01)

        torch.manual_seed(1)
        model = Functional()
        with torch.no_grad():
            first = F.cross_entropy(model.net(x[:16]), y[:16]).item()
        cb = FitscopeCallback(project="pl", name="functional")
        pl.Trainer(callbacks=[cb], accumulate_grad_batches=2, **quiet).fit(model, train, val)
        print("RUN", cb.run.id)
        print("FIRST", first)
    """)
    proc = run_script(code, tmp_path, server.url)
    run_id = _run_id(proc)
    first = float(next(ln.split()[1] for ln in proc.stdout.splitlines() if ln.startswith("FIRST")))
    # 8 batches per epoch, 2 per optimizer step: 4 steps per epoch
    assert _steps(server, run_id, "train/loss") == list(range(1, 9))
    loss = server.api(f"/api/v1/runs/{run_id}/series", key="train/loss")["values"]
    # the mean of the two micro-batch losses, not the loss divided for accumulation
    assert first * 0.8 < loss[0] < first * 1.2
    assert _steps(server, run_id, "val/loss") == [4, 8]
    # F.cross_entropy in validation_step is seen by the hook: accuracy and confidence too
    assert _steps(server, run_id, "val/accuracy") == [4, 8]
    assert _counts(server, run_id)["val/confidence"] == 2
    fs = server.api(f"/api/v1/runs/{run_id}")["config"]["fitscope"]
    assert (fs["batch_size"], fs["micro_batch_size"], fs["grad_accumulation"]) == (32, 16, 2)
    assert fs["num_classes"] == 2


@need_lightning
def test_lightning_functional_loss_and_trainer_test_after_fit(server, tmp_path):
    code = LIGHTNING_PRELUDE + textwrap.dedent("""
        class Functional(pl.LightningModule):
            def __init__(self):
                super().__init__()
                self.net = nn.Linear(8, 3)

            def forward(self, xb):
                return self.net(xb)

            def training_step(self, batch, i):
                xb, yb = batch
                loss = F.cross_entropy(self(xb), yb)
                self.log("train_loss", loss, on_step=True, on_epoch=True)
                return loss

            def validation_step(self, batch, i):
                xb, yb = batch
                self.log("val_loss", F.cross_entropy(self(xb), yb), on_step=True, on_epoch=True)
                self.log("val_f1", 0.25)

            def test_step(self, batch, i):
                xb, yb = batch
                logits = self(xb)
                self.log("test_loss", F.cross_entropy(logits, yb))
                self.log("test_f1", 0.75)

            def configure_optimizers(self):
                return torch.optim.SGD(self.parameters(), lr=0.1)

        torch.manual_seed(1)
        model = Functional()
        cb = FitscopeCallback(project="pl", name="functional-test")
        trainer = pl.Trainer(callbacks=[cb], **quiet)
        trainer.fit(model, train, val)
        test_x, test_y = x[64:112], y[64:112]
        with torch.no_grad():
            logits = model(test_x)
            print("TEST", F.cross_entropy(logits, test_y).item(),
                  (logits.argmax(1) == test_y).float().mean().item())
            print("LAST", F.cross_entropy(model(x[112:128]), y[112:128]).item())
        trainer.test(model, DataLoader(TensorDataset(test_x, test_y), batch_size=48))
        print("RUN", cb.run.id)
    """)
    proc = run_script(code, tmp_path, server.url)
    run_id = _run_id(proc)
    out = {ln.split()[0]: ln.split()[1:] for ln in proc.stdout.splitlines() if ln[:4].isupper()}
    counts = _counts(server, run_id)
    assert _steps(server, run_id, "train/loss") == list(range(1, 17))
    for key in ("val/loss", "val/accuracy", "val/f1"):
        assert _steps(server, run_id, key) == [8, 16], key
    assert not any(k.endswith("_epoch") or k.endswith("_step") for k in counts), counts
    # the test after fit, under its own split, at the last step
    test = server.api(f"/api/v1/runs/{run_id}/series", key="test/loss")
    assert test["steps"] == [16]
    assert test["values"][0] == pytest.approx(float(out["TEST"][0]), rel=1e-5)
    acc = server.api(f"/api/v1/runs/{run_id}/series", key="test/accuracy")["values"]
    assert acc[0] == pytest.approx(float(out["TEST"][1]), rel=1e-5)
    assert _steps(server, run_id, "test/f1") == [16]
    assert counts["test/confidence"] == 1
    fs = server.api(f"/api/v1/runs/{run_id}")["config"]["fitscope"]
    assert (fs["batch_size"], fs["grad_accumulation"], fs["num_classes"]) == (16, 1, 3)
    assert server.api(f"/api/v1/runs/{run_id}")["status"] == "finished"


HF_SCRIPT = textwrap.dedent("""
    import json, os, sys
    import numpy as np
    import torch
    from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments
    from fitscope.integrations.huggingface import FitscopeCallback

    out = sys.argv[1] if len(sys.argv) > 1 else os.environ["OUT_DIR"]
    torch.manual_seed(0)

    class Tokens(torch.utils.data.Dataset):
        def __init__(self, n, seed):
            g = torch.Generator().manual_seed(seed)
            self.ids = torch.randint(1, 50, (n, 12), generator=g)
            self.labels = (self.ids[:, 0] > 25).long()
        def __len__(self):
            return len(self.ids)
        def __getitem__(self, i):
            return {"input_ids": self.ids[i], "attention_mask": torch.ones(12, dtype=torch.long),
                    "labels": self.labels[i]}

    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16, num_labels=3)
    model = BertForSequenceClassification(config)

    def accuracy(p):
        return {"accuracy": float((np.argmax(p.predictions, axis=1) == p.label_ids).mean())}

    args = TrainingArguments(output_dir=out, per_device_train_batch_size=8, per_device_eval_batch_size=16,
                             num_train_epochs=2, eval_strategy="epoch", logging_steps=2, learning_rate=1e-3,
                             save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True,
                             run_name="tiny-bert",
                             gradient_accumulation_steps=int(os.environ.get("GA", "1")))
    cb = FitscopeCallback(project="hf")
    trainer = Trainer(model=model, args=args, train_dataset=Tokens(64, 1), eval_dataset=Tokens(40, 2),
                      compute_metrics=accuracy, callbacks=[cb])
    micro = []  # the loss the model computed for each training micro-batch
    model.register_forward_hook(lambda m, a, o: micro.append(o.loss.item()) if m.training else None)
    trainer.train()
    trainer.save_state()
    print("MICRO", *micro)
    if os.environ.get("FINAL"):
        m = trainer.evaluate()
        print("EVAL", m["eval_loss"], m["eval_accuracy"])
        m = trainer.evaluate(Tokens(24, 3), metric_key_prefix="test")
        print("TEST", m["test_loss"], m["test_accuracy"])
    print("RUN", cb.run.id)
""")


@need_transformers
def test_huggingface_accumulation_and_evaluate_after_training(server, tmp_path):
    proc = run_script(
        HF_SCRIPT, tmp_path, server.url, OUT_DIR=str(tmp_path / "out"), GA="2", FINAL="1"
    )
    run_id = _run_id(proc)
    out = {ln.split()[0]: ln.split()[1:] for ln in proc.stdout.splitlines() if ln[:4].isupper()}
    counts = _counts(server, run_id)
    # 64 samples / (8 x 2) = 4 optimizer steps per epoch
    assert _steps(server, run_id, "train/loss") == list(range(1, 9))
    assert _steps(server, run_id, "val/loss") == [4, 8]
    # the evaluate() after training: a second pass at step 8, never merged with the first
    final = server.api(f"/api/v1/runs/{run_id}/series", key="val2/loss")
    assert final["steps"] == [8]
    assert final["values"][0] == pytest.approx(float(out["EVAL"][0]), rel=1e-4)
    test = server.api(f"/api/v1/runs/{run_id}/series", key="test/loss")
    assert test["steps"] == [8]
    assert test["values"][0] == pytest.approx(float(out["TEST"][0]), rel=1e-4)
    acc = server.api(f"/api/v1/runs/{run_id}/series", key="test/accuracy")["values"]
    assert acc[0] == pytest.approx(float(out["TEST"][1]), rel=1e-4)
    assert "epoch" not in counts and "test_loss" not in counts
    fs = server.api(f"/api/v1/runs/{run_id}")["config"]["fitscope"]
    assert (fs["batch_size"], fs["micro_batch_size"], fs["grad_accumulation"]) == (16, 8, 2)
    assert fs["num_classes"] == 3
    # the mean of the model's own micro-batch losses, whatever the Trainer does to them
    # (transformers 5 skips its division for models taking **kwargs, so its log is 2x this)
    micro = [float(v) for v in out["MICRO"]]
    assert len(micro) == 16
    live = server.api(f"/api/v1/runs/{run_id}/series", key="train/loss")["values"]
    for step in range(8):
        assert live[step] == pytest.approx((micro[2 * step] + micro[2 * step + 1]) / 2, rel=1e-5)


@need_transformers
def test_huggingface_callback_and_import_of_its_trainer_state(server, tmp_path):
    proc = run_script(HF_SCRIPT, tmp_path, server.url, OUT_DIR=str(tmp_path / "out"))
    run_id = _run_id(proc)
    counts = _counts(server, run_id)
    # every optimizer step, not only every logging_steps
    for key in ("train/loss", "grad_norm/total", "lr/0"):
        assert _steps(server, run_id, key) == list(range(1, 17)), key
    for key in ("val/loss", "val/accuracy"):
        assert _steps(server, run_id, key) == [8, 16], key
    assert counts["val/confidence"] == 2
    assert "epoch" not in counts  # not a metric
    assert not any("runtime" in k or "per_second" in k for k in counts)
    run = server.api(f"/api/v1/runs/{run_id}")
    assert run["name"] == "tiny-bert" and run["status"] == "finished"
    assert (
        run["config"]["learning_rate"] == 1e-3
        and run["config"]["per_device_train_batch_size"] == 8
        and run["config"]["lr_scheduler_type"] == "linear"
    )
    assert run["config"]["fitscope"]["model_class"] == "BertForSequenceClassification"

    # the Trainer's own record of the same run, imported, agrees with what the callback recorded
    state = tmp_path / "out" / "trainer_state.json"
    assert json.loads(state.read_text())["log_history"]
    r = cli("import", str(state), "--name", "from-state", "--url", server.url, tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    [imported] = [x for x in server.api("/api/v1/runs") if x["name"] == "from-state"]

    def series(rid: str, key: str) -> dict[int, float]:
        s = server.api(f"/api/v1/runs/{rid}/series", key=key)
        return dict(zip(s["steps"], s["values"], strict=True))

    live_val, imp_val = series(run_id, "val/loss"), series(imported["id"], "val/loss")
    assert set(imp_val) == {8, 16}
    for step in (8, 16):
        assert imp_val[step] == pytest.approx(live_val[step], rel=1e-4)
    assert series(imported["id"], "val/accuracy") == series(run_id, "val/accuracy")
    live_loss, imp_loss = series(run_id, "train/loss"), series(imported["id"], "train/loss")
    assert set(imp_loss) == set(range(2, 17, 2))
    for step in imp_loss:  # the Trainer logs the mean over each logging_steps window
        assert imp_loss[step] == pytest.approx(
            (live_loss[step - 1] + live_loss[step]) / 2, rel=1e-4
        )
    assert series(imported["id"], "lr/0")[16] == pytest.approx(
        series(run_id, "lr/0")[16], abs=1e-12
    )
