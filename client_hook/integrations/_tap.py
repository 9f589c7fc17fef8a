"""Feeding a loss computed inside a framework to the hook's criterion capture.

Frameworks compute the loss inside the model (Hugging Face) or in user code
(Lightning's ``training_step``), so there may be no criterion module to hook.
A :func:`loss_tap` stands in for one: calling ``tap(loss)`` or
``tap(logits, target, loss)`` looks to the hook exactly like a call
``criterion(logits, target) -> loss``, so training losses are averaged per
optimizer step and evaluation passes are summarised (with confidence
histograms when logits and class targets are given), as for plain PyTorch.
"""

from __future__ import annotations

from typing import Any


def loss_tap() -> Any:
    """A module whose forward returns its last argument unchanged."""
    import torch

    class ModelLoss(torch.nn.Module):
        def forward(self, *args: Any) -> Any:
            return args[-1]

    return ModelLoss()


def scalar_loss(x: Any) -> Any:
    """``x`` if it is a 0-d floating tensor, else ``None``."""
    import torch

    if isinstance(x, torch.Tensor) and x.dim() == 0 and x.is_floating_point():
        return x.detach()
    return None


def classification_pair(logits: Any, target: Any) -> bool:
    """True when ``logits`` [N, C] and integer ``target`` [N] match, as the confidence capture needs."""
    import torch

    return (
        isinstance(logits, torch.Tensor)
        and isinstance(target, torch.Tensor)
        and logits.dim() == 2
        and target.dim() == 1
        and not target.is_floating_point()
        and logits.shape[0] == target.shape[0]
    )


def unwrap_optimizer(opt: Any) -> Any:
    """The torch optimizer inside a wrapper (accelerate's ``AcceleratedOptimizer``, Lightning's)."""
    import torch

    for _ in range(4):
        inner = getattr(opt, "optimizer", None) or getattr(opt, "_optimizer", None)
        if isinstance(inner, torch.optim.Optimizer) and inner is not opt:
            opt = inner
        else:
            break
    return opt
