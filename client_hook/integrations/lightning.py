"""PyTorch Lightning: one callback, no other change.

    from fitscope.integrations.lightning import FitscopeCallback
    trainer = Trainer(callbacks=[FitscopeCallback(project="my-project")])

At the start of training it calls ``fitscope.init`` and attaches the hook to
the LightningModule and its (first) optimizer: gradient norms, learning rates
and steps come from there, as in plain PyTorch.  The loss comes from the
module's criterion when it has one as an attribute (``self.criterion =
nn.CrossEntropyLoss()``: evaluation passes then also give accuracy and the
confidence histogram); otherwise from the loss ``training_step`` returns and
the one ``validation_step`` returns (or logs as ``val_loss``).  Other
validation metrics logged with ``self.log`` (``val_acc`` -> ``val/accuracy``)
are recorded at the end of each validation epoch.  Only the global-zero
process records.  Works with ``lightning`` and ``pytorch_lightning``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._console import say_once
from ..importers._model import standard_key
from ._tap import loss_tap, scalar_loss, unwrap_optimizer

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
        self._tap: Any = None
        self._val_from_hook = False

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
        if criterion is None:
            self._tap = criterion = loss_tap()
        self._val_from_hook = self._tap is None
        self.run.watch(pl_module, optimizer, criterion)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if self.run is not None:
            self.run.finish()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        if self.run is not None:
            self.run._close("crashed", timeout=5.0)

    # -- losses ------------------------------------------------------------------------------
    def on_before_backward(self, trainer: Any, pl_module: Any, loss: Any) -> None:
        if self._tap is None or self.run is None:
            return
        value = scalar_loss(loss)
        if value is not None:
            # automatic optimization divides the loss by the accumulation factor before backward
            if getattr(pl_module, "automatic_optimization", True):
                value = value * trainer.accumulate_grad_batches
            self._tap(value)

    def on_validation_batch_end(
        self,
        trainer: Any,
        pl_module: Any,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self._tap is None or self.run is None or trainer.sanity_checking:
            return
        loss = outputs
        if isinstance(outputs, Mapping):
            loss = outputs.get("loss", outputs.get("val_loss"))
        value = scalar_loss(loss)
        if value is not None:
            self._tap(value)
            self._val_from_hook = True

    def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if self.run is None or trainer.sanity_checking:
            return
        # what the hook already records: val/loss whenever it saw the loss, and
        # val/accuracy when a real criterion (with logits and targets) is hooked
        own = {"val/loss"} if self._val_from_hook else set()
        if self._tap is None:
            own.add("val/accuracy")
        values = {}
        for name, value in dict(trainer.callback_metrics).items():
            key = val_key(name)
            if key is not None and key not in own:
                values[key] = value
        if values:
            try:
                self.run.log(values, step=trainer.global_step)
            except Exception as exc:  # never into the training loop
                say_once("lightning-log", f"could not record validation metrics: {exc}")


_VAL_PREFIXES = ("validation_", "validation/", "valid_", "valid/", "val_", "val/", "eval_", "eval/")


def val_key(name: str) -> str | None:
    """``val_loss`` -> ``val/loss``, ``val_acc`` -> ``val/accuracy``, ``val_f1`` -> ``val/f1``;
    ``None`` for a metric that is not a validation metric."""
    key = standard_key(name)
    if key.startswith("val/"):
        return key
    low = name.lower()
    for prefix in _VAL_PREFIXES:
        if low.startswith(prefix) and len(name) > len(prefix):
            return "val/" + name[len(prefix) :]
    return None
