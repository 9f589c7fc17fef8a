"""Facts about a watched model, optimizer and criterion, for the run's config.

Static facts are read once at ``watch``; the rest (batch size, number of
classes, AMP, gradient clipping) are learned from the first optimizer step and
sent again whenever they change.
"""

from __future__ import annotations

import hashlib
from typing import Any

# segments that wrappers insert into parameter names and that users never wrote
_WRAPPER_SEGMENTS = {"_orig_mod", "_fsdp_wrapped_module", "_checkpoint_wrapped_module"}


def layer_name(param_name: str) -> str:
    """``"module.encoder._orig_mod.fc1.weight"`` -> ``"encoder.fc1"``.

    The layer is the module owning the parameter; the prefixes added by DDP,
    ``torch.compile``, FSDP and activation checkpointing are dropped.
    """
    parts = [p for p in param_name.split(".") if p not in _WRAPPER_SEGMENTS]
    while parts and parts[0] == "module":  # DistributedDataParallel / DataParallel
        parts = parts[1:]
    return short_name(".".join(parts[:-1]) or "(root)")


MAX_LAYER_NAME = 200  # PREFIXES.PARAM_NORM + this stays within the server's 250-character keys


def short_name(name: str) -> str:
    """A layer name every series key can carry: control characters become ``?``, and a
    name longer than ``MAX_LAYER_NAME`` keeps its head and tail around a short hash of the
    whole name (``"enc.block~1a2b3c4d~layer.fc1"``): deterministic, and distinct for
    distinct names."""
    clean = "".join(c if c >= " " else "?" for c in name)
    clean = clean.encode("utf-8", "replace").decode("utf-8")  # lone surrogates too
    if clean == name and len(name) <= MAX_LAYER_NAME:
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    if len(clean) <= MAX_LAYER_NAME:
        return clean if clean == name else f"{clean[: MAX_LAYER_NAME - 9]}~{digest}"
    keep = (MAX_LAYER_NAME - len(digest) - 2) // 2
    return f"{clean[:keep]}~{digest}~{clean[-keep:]}"


def unwrap_optimizer(opt: Any) -> Any:
    """The ``torch.optim.Optimizer`` inside wrappers such as Accelerate's or Lightning's."""
    try:
        import torch

        seen = 0
        while (
            opt is not None
            and not isinstance(opt, torch.optim.Optimizer)
            and hasattr(opt, "optimizer")
            and seen < 5
        ):
            opt, seen = opt.optimizer, seen + 1
    except Exception:
        pass
    return opt


def is_compiled(model: Any) -> bool:
    """``torch.compile(model)`` or ``model.compile()``."""
    if hasattr(model, "_orig_mod"):
        return True
    if getattr(model, "_compiled_call_impl", None) is not None:
        return True
    inner = getattr(model, "module", None)  # DDP(compiled) and friends
    return inner is not None and inner is not model and hasattr(inner, "_orig_mod")


def batch_dim(model: Any) -> int:
    """The batch dimension of the model's inputs: 1 for sequence-first recurrent models
    (``nn.LSTM``/``GRU``/``RNN`` without ``batch_first``), else 0."""
    try:
        import torch

        found = [m for m in model.modules() if isinstance(m, torch.nn.RNNBase)]
        if found and not any(getattr(m, "batch_first", False) for m in found):
            return 1
    except Exception:
        pass
    return 0


def autocast_on(device_type: str) -> bool:
    import torch

    try:
        return bool(torch.is_autocast_enabled(device_type))
    except TypeError:  # torch < 2.4 takes no argument and answers for CUDA
        if device_type == "cpu":
            return bool(torch.is_autocast_cpu_enabled())
        return bool(torch.is_autocast_enabled())


def describe(model: Any, optimizer: Any, criterion: Any, layers: list[str], params: list) -> dict:
    """Static facts: parameter counts, layer sizes, optimizer and criterion."""
    sizes: dict[str, int] = {}
    for name, p in zip(layers, params, strict=True):
        sizes[name] = sizes.get(name, 0) + p.numel()
    info: dict[str, Any] = {
        "parameters": sum(p.numel() for p in model.parameters()),
        "trainable_parameters": sum(sizes.values()),
        "layers": sizes,
        "model_class": type(getattr(model, "_orig_mod", model)).__name__,
        "compiled": is_compiled(model),
        "amp": False,
        "grad_clip": None,
        "batch_size": None,
        "num_classes": None,
    }
    if optimizer is not None and hasattr(optimizer, "param_groups"):
        groups = [
            {k: plain(v) for k, v in g.items() if k != "params"} for g in optimizer.param_groups
        ]
        info["optimizer"] = {"class": type(optimizer).__name__, "param_groups": groups}
    if criterion is not None:
        info["criterion"] = type(criterion).__name__
        ls = getattr(criterion, "label_smoothing", None)
        if isinstance(ls, (int, float)):
            info["label_smoothing"] = float(ls)
    return info


def plain(v: Any) -> Any:
    """A JSON-safe copy of an optimizer hyperparameter."""
    if isinstance(v, (bool, int, float, str)) or v is None:
        return v
    if isinstance(v, (tuple, list)):
        return [plain(x) for x in v]
    try:
        import torch

        if isinstance(v, torch.Tensor):
            if v.numel() == 1 and v.device.type == "cpu":
                return float(v.detach())
            return f"tensor(shape={list(v.shape)}, device={v.device})"  # reading it would sync
    except Exception:
        pass
    return repr(v)[:200]


class Discovery:
    """Facts learned from the micro-batches of the first optimizer step (shapes only: no sync)."""

    def __init__(self, criterion_name: str) -> None:
        self.criterion_name = criterion_name
        self.micro = 0
        self.samples = 0
        self.task: str | None = None  # classification kind, when labels can be counted
        self.classes = 0
        self.facts: dict[str, Any] = {}

    def see(self, logits: Any, target: Any, name: str | None = None, input_batch: int = 0) -> None:
        """One micro-batch's loss inputs; ``input_batch``: the batch size of the model's input
        when it was seen (a loss over flattened tokens counts sequences, not tokens)."""
        import torch

        from . import _evalstats as ev

        self.micro += 1
        ref = target if isinstance(target, torch.Tensor) else logits
        if input_batch > 0:
            self.samples += input_batch
        elif isinstance(ref, torch.Tensor) and ref.dim() > 0:
            self.samples += int(ref.shape[0])
        if self.micro == 1:
            crit = self.criterion_name if name is None else name
            task = ev.task_of(crit, logits, target)
            classes = ev.num_classes(task, logits)
            if ev.label_slots(classes):
                self.task, self.classes = task, classes
            if classes:
                self.facts["num_classes"] = classes
        if isinstance(logits, torch.Tensor) and (
            logits.dtype in (torch.float16, torch.bfloat16) or autocast_on(logits.device.type)
        ):
            self.facts["amp"] = True

    def result(self, world_size: int) -> dict[str, Any]:
        out = dict(self.facts)
        if self.samples:
            out["micro_batch_size"] = self.samples // max(self.micro, 1)
            out["grad_accumulation"] = self.micro
            out["batch_size"] = self.samples * world_size
        return out
