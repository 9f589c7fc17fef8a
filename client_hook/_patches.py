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
from collections.abc import Callable
from typing import Any

_lock = threading.Lock()
_active: list[Any] = []  # attached watchers
_restore: list[tuple[Any, str, Any, Any]] = []  # (owner, attribute, original, wrapper)


def register(watcher: Any) -> None:
    with _lock:
        _active.append(watcher)
        if len(_active) == 1:
            _install()


def unregister(watcher: Any) -> None:
    with _lock:
        if watcher in _active:
            _active.remove(watcher)
        if not _active:
            _uninstall()


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
    while _restore:
        owner, attr, original, wrapper = _restore.pop()
        if getattr(owner, attr, None) is wrapper:  # someone else's later patch stays
            setattr(owner, attr, original)


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
    """``module.forward`` replaced, for this instance only, by ``make(forward)``.

    The wrapper must pass every call through to ``forward``; after ``remove``
    it may still be called (when someone wrapped the method again after us) and
    must then do nothing else.
    """

    def __init__(self, module: Any, make: Callable[[Callable], Callable]) -> None:
        self.module = module
        own = vars(module)
        self._had_own = "forward" in own  # e.g. torch.compile's wrapper or Accelerate's
        self._own = own.get("forward")
        forward = module.forward
        wrapper = make(forward)
        wrapper.__wrapped__ = forward  # type: ignore[attr-defined]
        wrapper.__fitscope_wrapper__ = True  # type: ignore[attr-defined]
        self.wrapper = wrapper
        object.__setattr__(module, "forward", wrapper)

    def remove(self) -> None:
        own = vars(self.module)
        if own.get("forward") is not self.wrapper:
            return  # someone wrapped it again after us: leave theirs in place
        if self._had_own:
            own["forward"] = self._own
        else:
            del own["forward"]
