"""The hook's fast paths: the first training loss of a step (from the criterion module
here; a functional loss in ``Watcher.on_functional`` and ``Watcher.before_backward``), and a
plain ``optimizer.step()`` (the optimizer's step pre-hook, ``FastPaths._on_step``), in the
usual state.

Both run on every step, right after forward and right after backward, when the
CPU caches hold the model's activations and gradients rather than Python's own
code and data: there every function call, attribute read and torch operator
costs several times what it costs in a warm loop (a cold
``torch.compiler.is_compiling()`` call measured 5 us after a CNN's forward
pass).  So these paths do as little as the usual step needs and hand anything
else to the general paths of ``Watcher``, which they mirror exactly
(``tests/hook/test_fast_path.py`` trains the same loops both ways and compares
every recorded value).

``Watcher._fast`` says whether the fast paths may run.  ``_refresh_fast`` sets
it after every general step; every event that needs the general path clears
it (an evaluation batch, ``clip_grad_norm_`` with a new ``max_norm``, AMP's
scaler, a parameter without a gradient, a tensor learning rate, detaching, a
hook failing), and the step path also leaves it for steps that need more:
several micro-batches, or parameter norms or a label histogram due.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any

from ._labels import LABELS_EVERY, LabelCounts

PARAM_NORM_EVERY = 50  # weights move slowly; every 50 steps is enough for update/weight ratios
NO_LOSS_AFTER = 20  # steps without any training loss before fitscope says so (general path)

_grad_of = attrgetter("grad")


def loss_scalar(loss: Any) -> Any:
    """A training loss as a 0-d tensor outside autograd (a per-example loss vector is
    averaged).  ``.data`` rather than ``.detach()``: the same storage, read only, without a
    trip through the dispatcher (measured 3-5 us cheaper per step, cold)."""
    loss = loss.data
    return loss.float().mean() if loss.ndim else loss


class NoCompileFlag:
    """Stands in for ``torch.compiler`` where torch has no ``_is_compiling_flag``."""

    _is_compiling_flag = False


class FastPaths:
    """Mixed into ``Watcher``; the state below is the watcher's, shared with its general
    paths."""

    model: Any
    rec: Any
    params: list
    step: int
    _fast: bool
    _fast_until: int
    _attached: bool
    _last: Any
    _micro: list
    _norms: Any
    labels: LabelCounts
    _hyper_last: list | None
    _hyper_one: tuple | None
    _extras: list
    _discovery: Any
    _eval: Any
    _no_step: bool
    _facts_dirty: bool
    _scaler: bool
    _all_grads: bool
    _norm_dtype: Any
    _tensor_lr: bool
    _handles: dict
    _update_next: int
    _user_loss: bool
    _losses_seen: bool
    _cands: list
    _grad_on: Callable[[], bool]
    _Tensor: Any
    _dynamo: Callable[[], bool]
    _flags: Any
    _foreach_norm: Callable
    _clock: Callable[[], float]
    _on_loss: Callable[[tuple, dict, Any], None]
    _record_step: Callable[[Any], None]
    _step_general: Callable[[Any, tuple, dict], Any]
    _hyper: Callable[[list], None]
    _fold_labels: Callable[[], None]
    _update_work: Callable[[int], None]
    _fail: Callable[[str, Exception], None]

    def _refresh_fast(self) -> None:
        """Whether the coming losses and steps may take the fast paths: nothing unusual is
        pending (an evaluation pass, facts to send) or in use (AMP's scaler, parameters
        without gradients, half-precision norms, tensor learning rates).  Every event that
        ends this sets ``_fast = False``; the general step path calls this again."""
        self._fast = (
            self._attached
            and self._discovery is None
            and self._eval is None
            and not self._no_step
            and not self._facts_dirty
            and not self._scaler
            and self._all_grads
            and self._norm_dtype is None
            and not self._tensor_lr
            and not self._extras
            and not self._user_loss
            and "_on_step" in self._handles
        )
        pnorm = (self.step // PARAM_NORM_EVERY + 1) * PARAM_NORM_EVERY
        self._fast_until = min(pnorm, self.labels.last_step + LABELS_EVERY)
        if self.step < NO_LOSS_AFTER and not self._losses_seen:
            self._fast_until = min(self._fast_until, NO_LOSS_AFTER)

    def _loss_wrapper(self, forward: Callable) -> Callable:
        """The criterion's ``forward``, then its loss taken (once per micro-batch).

        The fast path is the first training loss of a step in the usual state: it
        keeps a reference to the loss and the target, nothing more.  Everything
        else goes to ``_on_loss``.
        """
        model, grad_on, tensor, labels = self.model, self._grad_on, self._Tensor, self.labels
        dynamo, flags, general = self._dynamo, self._flags, self._on_loss

        def forward_watched(*args: Any, **kwargs: Any) -> Any:
            output = forward(*args, **kwargs)
            if dynamo() or flags._is_compiling_flag:  # traced: stay out of the graph
                return output
            try:
                if (
                    self._fast
                    and self._last is None
                    and model.training
                    and grad_on()
                    and isinstance(output, tensor)
                ):
                    self._last = output
                    if labels.active:
                        target = args[1] if len(args) > 1 else kwargs.get("target")
                        if isinstance(target, tensor):
                            labels.targets.append(target)
                else:
                    general(args, kwargs, output)
            except Exception as exc:
                self._fail("_on_loss", exc)
            return output

        return forward_watched

    def _on_step(self, optimizer: Any, args: tuple, kwargs: dict) -> Any:
        """The optimizer's step pre-hook.  The usual step (a plain ``optimizer.step()``, one
        micro-batch, all gradients present, no AMP, no parameter norms or label histogram due)
        is recorded right here, writing the row ``_record_step`` would; anything else goes to
        ``_step_general``.  One frame, not a dispatcher and a second method: a call costs
        ~1-2 us here, cold."""
        if not self._fast or kwargs or len(args) != 1:
            return self._step_general(optimizer, args, kwargs)
        try:
            if self._dynamo() or self._flags._is_compiling_flag:
                return None
            step = self.step + 1
            if self._micro or step >= self._fast_until or self._cands:
                self._record_step(optimizer)
                return None
            norms = self._norms
            if norms is None:
                try:
                    norms = self._foreach_norm(list(map(_grad_of, self.params)))
                except TypeError:  # a parameter without a gradient this step
                    self._record_step(optimizer)
                    return None
            else:  # clip_grad_norm_ took them
                self._norms = None
            self.step = step
            rec = self.rec
            scalars = rec.scalars
            scalars.extend(norms)
            n_losses = 0
            loss = self._last
            if loss is not None:  # loss_scalar() inlined: a call costs ~1 us here, cold
                loss = loss.data
                scalars.append(loss.float().mean() if loss.ndim else loss)
                self._last = None
                n_losses = 1
            groups = optimizer.param_groups
            pair = None
            if len(groups) == 1:  # one tuple, no comprehension: measured ~3 us less, cold
                group = groups[0]
                pair = (group["lr"], group.get("weight_decay"))
                changed = pair != self._hyper_one
            else:  # one comprehension of pairs, not a list each: 7-8 us less per step, cold
                hyper = [(g["lr"], g.get("weight_decay")) for g in groups]
                changed = hyper != self._hyper_last
            extras: tuple = ()
            if changed:
                self._hyper([pair] if pair is not None else hyper)
                if self._extras:  # tensor learning rates: the general path from now on
                    extras = tuple(name for name, _ in self._extras)
                    scalars.extend(t for _, t in self._extras)
                    self._extras = []
                    self._fast = False
            rec.rows.append((step, "step", len(norms), None, n_losses, 0, extras))
            if step >= self._update_next:
                self._update_work(step)
            labels = self.labels
            if len(labels.targets) >= labels.cap:
                self._fold_labels()
            # Recorder.due() inlined (a method call costs ~5 us here, cold); the values that
            # due() also counts (host numbers, vectors) are flushed by the general path's due()
            if self._clock() >= rec.next_flush or len(scalars) >= rec.max_pending:
                rec.pack()
        except Exception as exc:
            self._fail("_on_step", exc)
        return None
