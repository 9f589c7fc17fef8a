"""PyTorch Lightning: one callback, no other change.

    from fitscope.integrations.lightning import FitscopeCallback
    trainer = Trainer(callbacks=[FitscopeCallback(project="my-project")])

At the start of training it calls ``fitscope.init`` and attaches the hook to
the LightningModule and its (first) optimizer: gradient norms, learning rates
and steps come from there, as in plain PyTorch.  The loss comes from the
module's criterion when it has one as an attribute (``self.criterion =
nn.CrossEntropyLoss()``); otherwise from ``torch.nn.functional`` losses called
in ``training_step`` / ``validation_step`` / ``test_step`` (e.g.
``F.cross_entropy``), else from the loss Lightning calls ``backward()`` on and
the one ``validation_step`` returns (or logs as ``val_loss``).  Classification
losses also give accuracy and the confidence histogram.  ``trainer.test`` and
``trainer.validate`` after ``fit`` are recorded under ``test/`` and ``val/``
at the last training step; the run finishes at interpreter exit (or
``callback.run.finish()``).  Other metrics logged with ``self.log``
(``val_acc`` -> ``val/accuracy``; ``_step`` copies skipped, ``_epoch`` suffixes
dropped) are recorded at the end of each evaluation epoch.  Only the
global-zero process records.  Works with ``lightning`` and ``pytorch_lightning``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import protocol
from .._console import say_once
from ..importers._model import standard_key
from ._tap import scalar_loss, unwrap_optimizer

try:
    from lightning.pytorch.callbacks import Callback
except ImportError:
    from pytorch_lightning.callbacks import Callback


def find_criterion(module: Any) -> Any:
    """The first direct child of ``module`` that is a torch loss module, else ``None``."""
    from torch.nn.modules.loss import _Loss

    for child in module.children():
        if isinstance(child, _Loss):
            return child
    return None


class FitscopeCallback(Callback):
    """Stream a Lightning run to fitscope. Arguments are those of :func:`fitscope.init`;
    ``criterion=`` names the loss module when it is not an attribute of the LightningModule."""

    def __init__(
        self,
        project: str | None = None,
        name: str | None = None,
        config: dict | None = None,
        url: str | None = None,
        *,
        criterion: Any = None,
        **options: Any,
    ) -> None:
        self.project = project
        self.name = name
        self.config = dict(config or {})
        self.url = url
        self.criterion = criterion
        self.options = options
        self.run: Any = None
        self._criterion_module = False
        self._eval_seen: Any = None

    # -- lifecycle -------------------------------------------------------------------------
    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.is_global_zero or self.run is not None:
            return
        import fitscope

        config: dict = {}
        try:
            config.update(dict(pl_module.hparams))
        except Exception:
            pass
        config.update(self.config)
        config.setdefault("accumulate_grad_batches", trainer.accumulate_grad_batches)
        config.setdefault("max_epochs", trainer.max_epochs)
        self.run = fitscope.init(
            project=self.project, name=self.name, config=config, url=self.url, **self.options
        )
        optimizer = unwrap_optimizer(trainer.optimizers[0]) if trainer.optimizers else None
        criterion = self.criterion or find_criterion(pl_module)
        self._criterion_module = criterion is not None
        # without a criterion module the hook sees functional losses and backward() itself
        self.run.watch(pl_module, optimizer, criterion)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        # not finished here: trainer.test / trainer.validate may follow (finished at exit)
        watcher = self._watcher()
        if watcher is not None:
            watcher.close_eval()

    def on_test_start(self, trainer: Any, pl_module: Any) -> None:
        watcher = self._watcher()
        if watcher is not None:
            watcher.name_split("test")

    def on_test_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, *args: Any) -> None:
        self._returned_eval_loss(outputs)

    def on_test_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._log_metrics(trainer, "test")

    def _watcher(self) -> Any:
        return None if self.run is None or self.run.finished else self.run._watcher

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        if self.run is not None:
            self.run._close("crashed", timeout=5.0)

    # -- evaluation ---------------------------------------------------------------------------
    def on_validation_batch_end(
        self,
        trainer: Any,
        pl_module: Any,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not trainer.sanity_checking:
            self._returned_eval_loss(outputs)

    def _returned_eval_loss(self, outputs: Any) -> None:
        """The loss an evaluation step returned, when the hook saw no loss call in that step."""
        watcher = self._watcher()
        if watcher is None or self._criterion_module:
            return
        try:
            if watcher._eval_seen is not None and watcher._eval_seen is not self._eval_seen:
                self._eval_seen = watcher._eval_seen  # a functional loss was seen: enough
                return
            loss = outputs
            if isinstance(outputs, Mapping):
                loss = outputs.get("loss", outputs.get("val_loss", outputs.get("test_loss")))
            value = scalar_loss(loss)
            if value is not None:
                watcher._eval_batch(value, None, None, "", "mean", -100)
                self._eval_seen = watcher._eval_seen = value
        except Exception as exc:  # never into the loop
            say_once("lightning-eval", f"could not record an evaluation loss: {exc}")

    def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.sanity_checking:
            self._log_metrics(trainer, "val")

    def _log_metrics(self, trainer: Any, split: str) -> None:
        """Metrics logged with ``self.log`` for this split, less what the hook records itself."""
        watcher = self._watcher()
        if watcher is None:
            return
        try:
            watcher.close_eval()
            own = set()
            last, watcher.last_pass = watcher.last_pass, None
            if last is not None:  # what the hook recorded for this pass itself
                own.add(protocol.split_key(split, "loss"))
                if last[2]:
                    own.add(protocol.split_key(split, "accuracy"))
            metrics = dict(trainer.callback_metrics)
            values = {}
            for name, value in metrics.items():
                if name.endswith("_step"):
                    continue  # the per-step copy of an on_step=True, on_epoch=True metric
                base = name[: -len("_epoch")] if name.endswith("_epoch") else name
                key = split_key(base, split)
                if key is not None and key not in own and key not in values:
                    values[key] = value
            if values:
                self.run.log(values, step=trainer.global_step)
        except Exception as exc:  # never into the training loop
            say_once("lightning-log", f"could not record {split} metrics: {exc}")


_VAL_PREFIXES = ("validation_", "validation/", "valid_", "valid/", "val_", "val/", "eval_", "eval/")


def split_key(name: str, split: str) -> str | None:
    """``val_acc`` -> ``val/accuracy`` for split "val"; ``test_acc`` -> ``test/accuracy`` for
    split "test"; ``None`` for a metric of another split."""
    if split == "val":
        return val_key(name)
    low = name.lower()
    for sep in ("_", "/"):
        if low.startswith(split + sep) and len(name) > len(split) + 1:
            tail = name[len(split) + 1 :]
            rest = standard_key("val_" + tail)  # test_acc -> accuracy, as val_acc is
            val = protocol.PREFIXES.VAL
            return protocol.split_key(split, rest[len(val) :] if rest.startswith(val) else tail)
    return None


def val_key(name: str) -> str | None:
    """``val_loss`` -> ``val/loss``, ``val_acc`` -> ``val/accuracy``, ``val_f1`` -> ``val/f1``;
    ``None`` for a metric that is not a validation metric."""
    key = standard_key(name)
    if key.startswith(protocol.PREFIXES.VAL):
        return key
    low = name.lower()
    for prefix in _VAL_PREFIXES:
        if low.startswith(prefix) and len(name) > len(prefix):
            return protocol.PREFIXES.VAL + name[len(prefix) :]
    return None
