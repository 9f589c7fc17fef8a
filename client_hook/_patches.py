"""Wrappers installed while a model is watched, for what hooks cannot see or
cannot see cheaply.

* ``clip_grad_norm_`` rescales gradients *before* ``optimizer.step()``, so an
  optimizer hook would only ever see clipped norms.  The wrapper around torch's
  clipping step lets the watcher measure the gradients just before they are
  clipped (its one norm pass of that step) and learn ``max_norm``.
* ``GradScaler.step`` skips ``optimizer.step()`` when gradients hold inf/NaN,
  so no optimizer hook runs at all; the wrapper records the skipped step and
  the loss scale.

They are installed when the first watcher attaches and removed when the last
detaches; every call goes straight through to torch's own function, and the
watcher's part never raises.

* ``ForwardWrapper`` puts a wrapper around one module's ``forward`` (the
  criterion's).  A forward hook would do, but any hook sends every call of the
  module down ``nn.Module``'s slow path, measured at 12-22 us per call on the
  CPU: more than all the rest of the criterion's capture.
"""

from __future__ import annotations

import functools
import threading
import types
from collections.abc import Callable
from typing import Any

_lock = threading.Lock()
_active: list[Any] = []  # attached watchers
_restore: list[tuple[Any, str, Any, Any]] = []  # (owner, attribute, original, wrapper)


_installed: set[str] = set()  # groups installed: "core", "losses", "backward"
_depth = [0]  # nesting of wrapped functional losses (a loss calling another is seen once)


def register(watcher: Any) -> None:
    with _lock:
        _active.append(watcher)
        wanted = {"core"}
        if getattr(watcher, "wants_losses", False):
            wanted.add("losses")
        if getattr(watcher, "wants_backward", False):
            wanted.add("backward")
        for group in sorted(wanted - _installed):
            try:
                {"core": _install, "losses": _install_losses, "backward": _install_backward}[
                    group
                ]()
            except Exception:  # an unexpected torch: that capture stays off
                pass
            _installed.add(group)


def unregister(watcher: Any) -> None:
    with _lock:
        if watcher in _active:
            _active.remove(watcher)
        if not _active:
            _uninstall()
            _installed.clear()


def _swap(owner: Any, attr: str, make: Callable[[Any], Any]) -> Any:
    original = getattr(owner, attr, None)
    if original is None:
        return None
    wrapper = make(original)
    setattr(owner, attr, wrapper)
    _restore.append((owner, attr, original, wrapper))
    return wrapper


def _install() -> None:
    try:
        import torch
        from torch.nn.utils import clip_grad
    except Exception:
        return
    original: Any
    if hasattr(clip_grad, "_clip_grads_with_norm_"):  # torch >= 2.6: clip_grad_norm_ calls it
        original = clip_grad._clip_grads_with_norm_
        wrapper = _swap(clip_grad, "_clip_grads_with_norm_", _wrap_clip)
        if getattr(torch.nn.utils, "clip_grads_with_norm_", None) is original:
            torch.nn.utils.clip_grads_with_norm_ = wrapper
            _restore.append((torch.nn.utils, "clip_grads_with_norm_", original, wrapper))
    else:  # older torch: only the public names can be wrapped
        original = clip_grad.clip_grad_norm_
        wrapper = _swap(clip_grad, "clip_grad_norm_", _wrap_clip)
        if torch.nn.utils.clip_grad_norm_ is original:
            torch.nn.utils.clip_grad_norm_ = wrapper
            _restore.append((torch.nn.utils, "clip_grad_norm_", original, wrapper))
    scaler_cls = getattr(getattr(torch, "amp", None), "GradScaler", None)
    if scaler_cls is not None and "step" in vars(scaler_cls):
        _swap(scaler_cls, "step", _wrap_scaler_step)


def _uninstall() -> None:
    _scaled[0] = _scaled[1] = None
    while _restore:
        owner, attr, original, wrapper = _restore.pop()
        if getattr(owner, attr, None) is wrapper:  # someone else's later patch stays
            setattr(owner, attr, original)


# torch.nn.functional losses: name -> the criterion class whose targets they take
FUNCTIONAL_LOSSES = {
    "cross_entropy": "CrossEntropyLoss",
    "nll_loss": "NLLLoss",
    "binary_cross_entropy": "BCELoss",
    "binary_cross_entropy_with_logits": "BCEWithLogitsLoss",
    "mse_loss": "MSELoss",
    "l1_loss": "L1Loss",
    "smooth_l1_loss": "SmoothL1Loss",
    "huber_loss": "HuberLoss",
    "kl_div": "KLDivLoss",
    "poisson_nll_loss": "PoissonNLLLoss",
    "gaussian_nll_loss": "GaussianNLLLoss",
    "soft_margin_loss": "SoftMarginLoss",
    "multilabel_soft_margin_loss": "MultiLabelSoftMarginLoss",
    "multi_margin_loss": "MultiMarginLoss",
    "margin_ranking_loss": "MarginRankingLoss",
    "hinge_embedding_loss": "HingeEmbeddingLoss",
    "cosine_embedding_loss": "CosineEmbeddingLoss",
    "triplet_margin_loss": "TripletMarginLoss",
    "ctc_loss": "CTCLoss",
}


def _install_losses() -> None:
    """Wrap the losses of ``torch.nn.functional`` (where user code and models look them up)."""
    import torch.nn.functional as F

    for name, crit in FUNCTIONAL_LOSSES.items():
        if callable(getattr(F, name, None)):
            _swap(F, name, functools.partial(_wrap_loss, name=name, crit=crit))


def _wrap_loss(original: Callable, name: str, crit: str) -> Callable:
    import torch

    compiler = torch.compiler
    compiling = getattr(compiler, "is_dynamo_compiling", None) or (lambda: False)
    depth, active = _depth, _active  # closure cells: the wrapper reads no globals of ours

    def loss_fn(*args: Any, **kwargs: Any) -> Any:
        if compiling():  # traced by torch.compile: stay out of the graph
            return original(*args, **kwargs)
        depth[0] += 1
        try:
            out = original(*args, **kwargs)
        finally:
            depth[0] -= 1
        if depth[0] == 0:  # the outermost loss only
            for watcher in list(active):
                watcher.on_functional(crit, args, kwargs, out)
        return out

    # with the original's globals, TorchScript compiles a scripted caller against the
    # original's source (``__wrapped__``) and resolves its names where they live
    wrapper = types.FunctionType(
        loss_fn.__code__,
        getattr(original, "__globals__", None) or globals(),
        name,
        loss_fn.__defaults__,
        loss_fn.__closure__,
    )
    functools.update_wrapper(wrapper, original)
    wrapper.__fitscope_wrapper__ = True  # type: ignore[attr-defined]
    return wrapper


def _install_backward() -> None:
    """``Tensor.backward`` (each call is a micro-batch) and ``GradScaler.scale`` (its output
    is the loss times the scale: the loss itself is what is recorded)."""
    import torch

    _swap(torch.Tensor, "backward", _wrap_backward)
    scaler_cls = getattr(getattr(torch, "amp", None), "GradScaler", None)
    if scaler_cls is not None and "scale" in vars(scaler_cls):
        _swap(scaler_cls, "scale", _wrap_scale)


def _wrap_backward(original: Callable) -> Callable:
    @functools.wraps(original)
    def backward(self: Any, *args: Any, **kwargs: Any) -> Any:
        watchers = list(_active)
        for watcher in watchers:
            watcher.before_backward(self)
        result = original(self, *args, **kwargs)
        for watcher in watchers:
            if watcher.backward_steps:  # no optimizer to hook: each backward() is a step
                watcher.after_backward(self)
        return result

    backward.__fitscope_wrapper__ = True  # type: ignore[attr-defined]
    return backward


_scaled: list[Any] = [None, None]  # the latest GradScaler.scale output and its input


def _wrap_scale(original: Callable) -> Callable:
    @functools.wraps(original)
    def scale(self: Any, outputs: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, outputs, *args, **kwargs)
        _scaled[0], _scaled[1] = result, outputs
        return result

    scale.__fitscope_wrapper__ = True  # type: ignore[attr-defined]
    return scale


def unscaled(tensor: Any) -> Any:
    """The loss a ``GradScaler`` scaled into ``tensor`` (else ``tensor``)."""
    if _scaled[0] is tensor:
        inner = _scaled[1]
        _scaled[0] = _scaled[1] = None
        return inner
    return tensor


def _wrap_clip(original: Callable) -> Callable:
    @functools.wraps(original)
    def clip(parameters: Any, max_norm: Any, *args: Any, **kwargs: Any) -> Any:
        for watcher in list(_active):
            watcher.before_clip(parameters, max_norm)
        return original(parameters, max_norm, *args, **kwargs)

    clip.__fitscope_wrapper__ = True  # type: ignore[attr-defined]
    return clip


def _wrap_scaler_step(original: Callable) -> Callable:
    @functools.wraps(original)
    def step(self: Any, optimizer: Any, *args: Any, **kwargs: Any) -> Any:
        mine = [w for w in list(_active) if w.owns(optimizer)]
        if not mine:
            return original(self, optimizer, *args, **kwargs)
        before = [w.scaler_step_begin(self) for w in mine]
        result = original(self, optimizer, *args, **kwargs)
        for w, b in zip(mine, before, strict=True):
            w.scaler_step_end(b)
        return result

    step.__fitscope_wrapper__ = True  # type: ignore[attr-defined]
    return step


class ForwardWrapper:
    """``module.<attr>`` (``forward`` by default) replaced, for this instance only, by
    ``make(method)``.

    The wrapper must pass every call through to the method; after ``remove``
    it may still be called (when someone wrapped the method again after us) and
    must then do nothing else.
    """

    def __init__(
        self, module: Any, make: Callable[[Callable], Callable], attr: str = "forward"
    ) -> None:
        self.module = module
        self.attr = attr
        own = vars(module)
        self._had_own = attr in own  # e.g. torch.compile's wrapper or Accelerate's
        self._own = own.get(attr)
        method = getattr(module, attr)
        wrapper = make(method)
        wrapper.__wrapped__ = method  # type: ignore[attr-defined]
        wrapper.__fitscope_wrapper__ = True  # type: ignore[attr-defined]
        self.wrapper = wrapper
        object.__setattr__(module, attr, wrapper)

    def remove(self) -> None:
        own = vars(self.module)
        if own.get(self.attr) is not self.wrapper:
            return  # someone wrapped it again after us: leave theirs in place
        if self._had_own:
            own[self.attr] = self._own
        else:
            del own[self.attr]
