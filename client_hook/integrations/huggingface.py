"""Hugging Face Transformers: one ``TrainerCallback``, no other change.

    from fitscope.integrations.huggingface import FitscopeCallback
    trainer = Trainer(model=model, args=args, ..., callbacks=[FitscopeCallback()])

When training begins it calls ``fitscope.init`` (the name defaults to
``args.run_name``) and attaches the hook to the model and the optimizer:
gradient norms, learning rates and steps as in plain PyTorch.  The loss is read
from the model's output (``outputs.loss``) on every forward pass, so
``train/loss`` is recorded every optimizer step (not only every
``logging_steps``), and evaluation passes give ``val/loss`` and, for
classification (``logits`` [N, C] with integer ``labels``), ``val/accuracy`` and
the confidence histogram.  ``trainer.evaluate()`` after training is recorded
too, at the last step (``metric_key_prefix="test"`` gives ``test/*``); the run
finishes at interpreter exit (or ``callback.run.finish()``).  Other metrics the
Trainer logs (``eval_f1`` -> ``val/f1``) are recorded at its logging steps;
``epoch`` is not a metric and is left out.  Only the main process records.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from transformers import TrainerCallback

from .._console import say_once
from ..importers._model import is_noise
from ..importers.hf_state import hf_key
from ..protocol import KEYS, split_key
from ._tap import classification_pair, loss_tap, scalar_loss, unwrap_optimizer

ARG_KEYS = (
    "learning_rate",
    "weight_decay",
    "adam_beta1",
    "adam_beta2",
    "max_grad_norm",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "warmup_steps",
    "warmup_ratio",
    "lr_scheduler_type",
    "optim",
    "seed",
    "fp16",
    "bf16",
    "label_smoothing_factor",
)
# what the hook records itself, every step: the Trainer's copies are left out
_HOOK_KEYS = {KEYS.TRAIN_LOSS, KEYS.VAL_LOSS, KEYS.LR_FIRST, KEYS.GRAD_NORM_TOTAL}


def _plain(v: Any) -> Any:
    """A TrainingArguments value as JSON: enums by their value (``"linear"``), others as text."""
    v = getattr(v, "value", v)
    return v if isinstance(v, (int, float, str, bool)) or v is None else str(v)


def _loss_of(output: Any) -> Any:
    if isinstance(output, Mapping):
        return output.get("loss")
    if isinstance(output, (tuple, list)) and output:
        return output[0]
    return getattr(output, "loss", None)


class FitscopeCallback(TrainerCallback):
    """Stream a Hugging Face ``Trainer`` run to fitscope. Arguments are those of :func:`fitscope.init`."""

    def __init__(
        self,
        project: str | None = None,
        name: str | None = None,
        config: dict | None = None,
        url: str | None = None,
        **options: Any,
    ) -> None:
        self.project = project
        self.name = name
        self.config = dict(config or {})
        self.url = url
        self.options = options
        self.run: Any = None
        self._tap: Any = None
        self._handle: Any = None
        self._classified = False
        self._evaluated: dict[str, str] = {}  # metric prefix -> split of the latest evaluate()

    def on_train_begin(
        self,
        args: Any,
        state: Any,
        control: Any,
        model: Any = None,
        optimizer: Any = None,
        **kwargs: Any,
    ) -> None:
        if not state.is_world_process_zero or self.run is not None or model is None:
            return
        import fitscope

        config = {k: _plain(getattr(args, k)) for k in ARG_KEYS if hasattr(args, k)}
        config.update(self.config)
        name = self.name or getattr(args, "run_name", None)
        self.run = fitscope.init(
            project=self.project, name=name, config=config, url=self.url, **self.options
        )
        self._tap = loss_tap()
        opt = unwrap_optimizer(optimizer) if optimizer is not None else None
        self.run.watch(model, opt, self._tap)
        try:
            self._handle = model.register_forward_hook(self._on_forward, with_kwargs=True)
        except Exception as exc:
            say_once(
                "hf-forward-hook", f"cannot read the model's loss ({exc}); losses not recorded"
            )

    def _on_forward(self, module: Any, args: tuple, kwargs: dict, output: Any) -> None:
        # a forward hook: tensor math only, and never raise into the training step
        try:
            loss = scalar_loss(_loss_of(output))
            if loss is None:
                return
            import torch

            labels = kwargs.get("labels")
            if module.training and torch.is_grad_enabled():
                out = output.get("logits") if isinstance(output, Mapping) else None
                if isinstance(out, torch.Tensor) and isinstance(labels, torch.Tensor):
                    self._tap(out, labels, loss)  # shapes give batch size and classes
                else:
                    self._tap(loss)
                return
            logits: Any = output.get("logits") if isinstance(output, Mapping) else None
            if classification_pair(logits, labels):
                self._classified = True
                self._tap(logits.detach(), labels, loss)
            else:
                self._tap(loss)
        except Exception as exc:
            say_once("hf-forward", f"loss capture stopped: {type(exc).__name__}: {exc}")
            if self._handle is not None:
                self._handle.remove()

    def _close_pass(self, logs: dict) -> None:
        """An evaluation's metrics are logged (just before ``on_evaluate``): its batches become
        one record, under the split its metric prefix names (``eval_`` -> ``val/``,
        ``test_`` -> ``test/``)."""
        watcher = None if self.run is None or self.run.finished else self.run._watcher
        prefix = _metric_prefix(logs)
        if watcher is None or prefix is None:
            return
        try:
            split = "val" if prefix == "eval" else prefix
            watcher._passes.name_next(split)
            watcher.close_eval()
            watcher._passes.name = None  # no pass was open: the name names nothing later
            self._evaluated = {prefix: split}
        except Exception as exc:
            say_once("hf-evaluate", f"could not record an evaluation: {exc}")

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any
    ) -> None:
        if self.run is None or self.run.finished or not logs or "train_runtime" in logs:
            return
        self._close_pass(logs)
        own = _HOOK_KEYS | ({KEYS.VAL_ACCURACY} if self._classified else set())
        values = {}
        for name, value in logs.items():
            key = hf_key(name)
            prefix, _, rest = name.partition("_")
            if prefix in self._evaluated and prefix != "eval" and rest:
                split = self._evaluated[prefix]
                key = split_key(split, rest)
                if rest in ("loss", "accuracy"):
                    continue  # recorded by the hook from the pass itself
            if key in own or key == KEYS.EPOCH or is_noise(name) or isinstance(value, bool):
                continue
            if isinstance(value, (int, float)):
                values[key] = value
        if values:
            self.run.log(values, step=state.global_step)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # not finished here: trainer.evaluate() may follow; the run finishes at exit
        if self.run is not None and not self.run.finished and self.run._watcher is not None:
            self.run._watcher.close_eval()


def _metric_prefix(logs: dict) -> str | None:
    """``eval`` for an evaluation's ``{"eval_loss": ..., "eval_runtime": ...}``, ``test`` for
    ``{"test_loss": ...}``; None for training logs."""
    for name in logs:
        if name.endswith("_runtime") and name != "train_runtime":
            return name[: -len("_runtime")]
    for name in logs:
        if name.endswith("_loss") and name != "train_loss":
            return name[: -len("_loss")]
    return None
