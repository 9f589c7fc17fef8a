"""PyTorch hooks that capture losses, gradient norms, learning rates and
evaluation statistics without any change to the user's loop.

Everything here runs on the training thread, so it only keeps references to
tensors, launches device-side reductions and does plain Python bookkeeping:
no ``.item()``, no ``.cpu()``, no I/O.  A hook that fails is removed and
reported once; nothing ever propagates into the training loop.

Where values come from:

* the loss: a wrapper around the criterion's ``forward`` (a forward hook would
  send every criterion call down ``nn.Module``'s slow hook path), or, without a
  criterion, the model's forward hook when its output has ``.loss`` (Hugging
  Face style);
* gradient norms: one ``torch._foreach_norm`` per step, just before
  ``optimizer.step()`` -- or just before ``clip_grad_norm_`` rescales them;
* learning rate, weight decay, parameter norms: in the same hook, before the
  update (a scheduler steps after the optimizer, so they are final there);
* evaluation: criterion calls while the model is in eval mode or gradients are
  off are summed on the device until the next training step closes the pass.

The two per-step hooks are the hot path, paid every step: the criterion
wrapper only keeps a reference to the loss; the optimizer hook takes the norm
pass, then detaches the loss and appends one row, so the training thread runs
the fewest distinct functions between ``backward()`` and the update.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from . import _evalstats as ev
from . import _facts, _patches, _updates
from ._console import say_once
from ._fastpath import (
    NO_LOSS_AFTER,
    PARAM_NORM_EVERY,
    FastPaths,
    NoCompileFlag,
    loss_scalar,
)
from ._labels import LabelCounts
from ._passes import Passes, split_in_caller
from ._recorder import Recorder
from ._records import RowKind
from .protocol import KEYS, PREFIXES

NO_STEP_AFTER = 256  # training losses without an optimizer step before each loss counts as a step
# (gradient accumulation rarely exceeds 64 micro-batches per step; 4x margin)
MAX_CANDIDATES = 16  # training losses held between two backward() calls
# autograd nodes by which a loop scales its loss before backward (accumulation, GradScaler)
_SCALING = {"DivBackward0", "DivBackward1", "MulBackward0", "MulBackward1", "MeanBackward0"}


def guarded(fn: Callable) -> Callable:
    """For the rarely called entry points: on an exception, switch off and say so once."""
    name = fn.__name__

    @functools.wraps(fn)
    def wrapper(self: Watcher, *args: Any, **kwargs: Any) -> Any:
        if name in self.broken:
            return None
        try:
            return fn(self, *args, **kwargs)
        except Exception as exc:
            self._fail(name, exc)
        return None

    return wrapper


class Watcher(FastPaths):
    def __init__(
        self,
        recorder: Recorder,
        model: Any,
        optimizer: Any = None,
        criterion: Any = None,
        *,
        world_size: int = 1,
        on_facts: Callable[[dict], None] | None = None,
    ) -> None:
        import torch

        self._torch = torch
        self._Tensor = torch.Tensor
        self._grad_on = torch.is_grad_enabled
        self._compiling = getattr(torch.compiler, "is_compiling", None) or (lambda: False)
        # the hot paths ask dynamo alone (one frame; torch.compiler.is_compiling costs two and
        # measured 5 us per call, cold, after a forward pass) and read export's flag themselves
        self._dynamo = getattr(torch.compiler, "is_dynamo_compiling", None) or self._compiling
        self._flags = (
            torch.compiler if hasattr(torch.compiler, "_is_compiling_flag") else NoCompileFlag
        )
        self._foreach_norm = torch._foreach_norm
        self._clock = time.monotonic
        self.rec = recorder
        self.model = model
        self.optimizer = _facts.unwrap_optimizer(optimizer)
        self.criterion = criterion
        self.world_size = world_size
        self.on_facts = on_facts
        self.step = 0
        self.broken: set[str] = set()
        self._micro: list[Any] = []  # detached losses of the coming step's earlier micro-batches
        # the latest training loss, detached only in the optimizer hook: a detach right after
        # the criterion would be one more operator to run cold between forward and backward
        self._last: Any = None
        self.labels = LabelCounts()  # the training labels, counted on the device
        self._norms: Any = None  # per-parameter grad norms taken for the coming step
        self._present: list[int] | None = None  # their parameter indices when some grads are None
        self._all_grads = True
        self._scaler = False  # a GradScaler steps this optimizer
        self._extras: list[Any] = []  # (name, tensor) single values for the coming step's row
        # (learning rate, weight decay) of each param group as last recorded; None: read again
        self._hyper_last: list | None = None
        self._hyper_one: tuple | None = None  # the same, when there is one group (fast path)
        self._tensor_lr = False
        self._eval: ev.EvalPass | None = None
        self._no_step = self.optimizer is None
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.params = [p for _, p in named]
        self._param_ids = {id(p) for p in self.params}
        recorder.layers = [_facts.layer_name(n) for n, _ in named]
        half = (torch.float16, torch.bfloat16)
        # half-precision norms overflow at 65504: take them in float32 there
        self._norm_dtype = torch.float32 if any(p.dtype in half for p in self.params) else None
        self._updates = _updates.UpdateSize(torch, self.params, self._norm_dtype)
        # the next step whose pre-step hook has update-size work: read the update measured at an
        # earlier step (complete by then) and begin measuring one when due (``_update_work``)
        self._update_next = 1
        # a criterion module is wrapped and is the loss; otherwise torch.nn.functional losses,
        # the model's output and the tensor backward() is called on are watched instead
        self._crit_module = isinstance(criterion, torch.nn.Module)
        if self._crit_module:
            crit_name = type(criterion).__name__
        elif criterion is not None:  # a plain function, e.g. F.nll_loss
            fn = getattr(criterion, "__name__", "")
            crit_name = _patches.FUNCTIONAL_LOSSES.get(fn, fn)
        else:
            crit_name = ""
        self._crit_name = crit_name
        self.wants_losses = not self._crit_module
        # no optimizer to hook: each backward() is a step (read by _patches' backward wrapper)
        self.backward_steps = self.optimizer is None
        self.wants_backward = not self._crit_module or self.backward_steps
        self._cands: list[tuple] = []  # (loss, logits, target, name, from_output) since backward
        self._eval_seen: Any = None  # the latest evaluation loss taken (once per batch)
        self._summed = False  # this step's losses are backward() tensors: summed, not averaged
        self._losses_seen = False
        self._user_loss = False  # run.log({"train/loss": ...}) is used
        self._passes = Passes()
        self._eval_auto: str | None = None  # the split the open pass's caller named, if any
        self.last_pass: tuple[int, str, str | None] | None = None  # (step, split, task)
        self._batch_dim = _facts.batch_dim(model)
        self._input_batch = 0  # batch size of the model's latest input, during discovery
        self._reduction = str(getattr(criterion, "reduction", "mean"))
        ignore = getattr(criterion, "ignore_index", ev.DEFAULT_IGNORE_INDEX)
        self._ignore = ignore if isinstance(ignore, int) else ev.DEFAULT_IGNORE_INDEX
        self._discovery: _facts.Discovery | None = _facts.Discovery(crit_name)
        self.facts = _facts.describe(model, self.optimizer, criterion, recorder.layers, self.params)
        self.facts["world_size"] = world_size
        self._facts_dirty = False
        self._handles: dict[str, Any] = {}
        # True while the next loss and step need nothing but the fast paths (see _refresh_fast)
        self._fast = False
        self._fast_until = 1  # the first step that needs the general path again
        self._attached = False
        self._attach()

    # -- attaching -------------------------------------------------------------
    def _attach(self) -> None:
        crit, model, opt = self.criterion, self.model, self.optimizer
        if self._crit_module:
            self._handles["_on_loss"] = _patches.ForwardWrapper(crit, self._loss_wrapper)
        elif hasattr(model, "register_forward_hook") and "_on_output" not in self.broken:
            self._handles["_on_output"] = model.register_forward_hook(
                self._on_output, with_kwargs=True
            )
        if self._discovery is not None and hasattr(model, "register_forward_pre_hook"):
            self._handles["_on_input"] = model.register_forward_pre_hook(
                self._on_input, with_kwargs=True
            )
        if callable(getattr(model, "train", None)) and hasattr(model, "__dict__"):
            self._handles["_on_mode"] = _patches.ForwardWrapper(model, self._mode_wrapper, "train")
        if opt is not None:
            if hasattr(opt, "register_step_pre_hook"):
                self._handles["_on_step"] = opt.register_step_pre_hook(self._on_step)
            else:
                self.backward_steps = self.wants_backward = True
                say_once(
                    f"optimizer-unhooked-{id(self)}",
                    f"cannot hook {type(opt).__name__}.step (not a torch.optim.Optimizer); "
                    "each backward() is recorded as a step",
                )
        _patches.register(self)
        self._attached = True
        self._refresh_fast()

    def _detach_hooks(self) -> None:
        self._attached = self._fast = False
        _patches.unregister(self)
        for h in self._handles.values():
            h.remove()
        self._handles.clear()

    def detach(self) -> None:
        """Remove every hook and hand over what is still pending."""
        self._detach_hooks()
        self.close_eval()
        if self._updates.pending:
            self._end_update()  # the last measured update is complete: no step follows it
        self._updates.cancel()
        self._take_candidates()
        if (self._micro or self._last is not None) and (self._no_step or self.step == 0):
            self._loss_steps()  # never stepped: the losses are all there is to see
        self._emit_train_labels()
        self.flush()

    def owns(self, optimizer: Any) -> bool:
        return optimizer is self.optimizer or _facts.unwrap_optimizer(optimizer) is self.optimizer

    def _fail(self, name: str, exc: Exception) -> None:
        """Switch off the hook ``name`` for good and say so once."""
        self.broken.add(name)
        self._fast = False
        handle = self._handles.pop(name, None)
        if handle is not None:
            handle.remove()
        say_once(
            f"hook-{name}-{id(self)}",
            f"capture in {name} stopped after an internal error "
            f"({type(exc).__name__}: {exc}); training continues unaffected",
        )

    # -- losses (hot path) -------------------------------------------------------
    def _on_loss(self, args: tuple, kwargs: dict, output: Any) -> None:
        """A criterion call the fast path does not take."""
        if not self._attached:
            return  # a later wrapper still calls ours after detach
        try:
            if isinstance(output, self._Tensor):
                target = args[1] if len(args) > 1 else kwargs.get("target")
                self._loss(output, args[0] if args else kwargs.get("input"), target)
        except Exception as exc:
            self._fail("_on_loss", exc)

    def _on_output(self, module: Any, args: tuple, kwargs: dict, output: Any) -> None:
        """The model's output holds its loss: a tuple/list with a scalar, ``["loss"]``, ``.loss``."""
        try:
            if isinstance(output, self._Tensor) or self._compiling():
                if isinstance(output, self._Tensor):  # a plain model: nothing to read here
                    self._fail_quietly("_on_output")
                return
            loss, logits = _loss_in(output, self._Tensor)
            if loss is None or loss is self._eval_seen:
                return
            if any(c[0] is loss for c in self._cands):
                return  # a functional loss inside forward already gave it
            target = None
            for name in ("labels", "targets", "target", "y"):
                if isinstance(kwargs.get(name), self._Tensor):
                    target = kwargs[name]
                    break
            if target is None and len(args) > 1 and isinstance(args[1], self._Tensor):
                target = args[1]
            self._seen(loss, logits, target, self._crit_name, {}, True)
        except Exception as exc:
            self._fail("_on_output", exc)

    def _on_input(self, module: Any, args: tuple, kwargs: dict) -> None:
        """During the first step: the batch size, from the model's first tensor input."""
        try:
            first = next(
                (a for a in (*args, *kwargs.values()) if isinstance(a, self._Tensor)), None
            )
            if first is not None and first.dim() > self._batch_dim:
                self._input_batch = int(first.shape[self._batch_dim])
        except Exception as exc:
            self._fail("_on_input", exc)

    def _mode_wrapper(self, train: Callable) -> Callable:
        """``model.train(mode)`` / ``model.eval()``: an evaluation pass ends there."""

        def train_watched(*args: Any, **kwargs: Any) -> Any:
            out = train(*args, **kwargs)
            if self._attached and self._eval is not None and "_on_mode" not in self.broken:
                try:
                    self.close_eval()
                except Exception as exc:
                    self._fail("_on_mode", exc)
            return out

        return train_watched

    # -- functional losses, model outputs and backward() (without a criterion module) ------
    def on_functional(self, name: str, args: tuple, kwargs: dict, out: Any) -> None:
        """A ``torch.nn.functional`` loss was called (anywhere, also inside ``forward``).  Its
        wrapper (``_patches``) has already made sure torch.compile is not tracing."""
        if not self._attached or self._crit_module or "on_functional" in self.broken:
            return
        try:
            if not isinstance(out, self._Tensor):
                return
            logits = args[0] if args else kwargs.get("input")
            target = args[1] if len(args) > 1 else kwargs.get("target")
            cands = self._cands
            if (
                self._fast
                and self._last is None
                and not cands
                and self.model.training
                and self._grad_on()
            ):  # the usual step's first loss: what _seen does in that state, one call less
                cands.append((out, logits, target, name, False))
                return
            self._seen(out, logits, target, name, kwargs, False)
        except Exception as exc:
            self._fail("on_functional", exc)

    def _seen(
        self,
        loss: Any,
        logits: Any,
        target: Any,
        name: str,
        options: dict,
        from_output: bool,
    ) -> None:
        """A loss seen outside a criterion module: a training candidate or an eval batch
        (``options``: the loss call's keyword arguments, read for ``reduction`` and
        ``ignore_index`` when it is an eval batch)."""
        training = self.model.training
        pending = self._cands or self._last is not None or self._micro
        if training and self._grad_on():
            if self._eval is not None:
                self.close_eval()
            if len(self._cands) < MAX_CANDIDATES:
                self._cands.append((loss, logits, target, name, from_output))
        elif not training or not pending:
            # a loss under no_grad in the middle of a training step is a metric, not a pass
            reduction = options.get("reduction", "mean")
            ignore = options.get("ignore_index", ev.DEFAULT_IGNORE_INDEX)
            if not isinstance(reduction, str):
                reduction = "mean"
            if not isinstance(ignore, int):
                ignore = ev.DEFAULT_IGNORE_INDEX
            self._eval_batch(loss, logits, target, name, reduction, ignore)
            self._eval_seen = loss

    def before_backward(self, tensor: Any) -> None:
        """``tensor.backward()`` is about to run: the micro-batch's loss is decided here."""
        if not self._attached or self._crit_module or "before_backward" in self.broken:
            return  # (with a criterion module, the criterion gave the loss)
        try:
            if self._dynamo() or self._flags._is_compiling_flag:
                return
            cands = self._cands
            if self._fast and self._last is None and len(cands) == 1 and cands[0][0] is tensor:
                # the usual step, backward() on its one loss: what _train_loss does in that
                # state (``tests/hook/test_fast_path.py`` compares the two)
                self._cands = []
                self._last = tensor
                self._summed = False
                self._losses_seen = True
                target = cands[0][2]
                if self.labels.active and isinstance(target, self._Tensor):
                    self.labels.targets.append(target)  # counted by the fast step (_fastpath)
                return
            self._backward_loss(_patches.unscaled(tensor))
        except Exception as exc:
            self._fail("before_backward", exc)

    def _backward_loss(self, t: Any) -> None:
        cands, self._cands = self._cands, []
        found = _match(t, cands) if cands else None
        if found is None:
            found = next((c for c in cands if c[4]), None)  # the model's own loss
        if found is not None:
            loss, logits, target, name, _ = found
            self._train_loss(loss, logits, target, name, False)
        elif isinstance(t, self._Tensor) and t.dim() == 0 and t.is_floating_point():
            # a custom loss: the tensor itself (a loop divides it under accumulation)
            logits, target, name = cands[0][1:4] if cands else (None, None, self._crit_name)
            self._train_loss(t, logits, target, name, True)

    def _take_candidates(self) -> None:
        """Losses seen but never passed to backward() (e.g. ``torch.autograd.grad``)."""
        if self._cands:
            found = next((c for c in self._cands if c[4]), self._cands[0])
            self._cands = []
            self._train_loss(found[0], found[1], found[2], found[3], False)

    def after_backward(self, tensor: Any) -> None:
        """Without an optimizer to hook, each backward() is a step."""
        if not (self.backward_steps and self._attached) or "after_backward" in self.broken:
            return
        try:
            if self._compiling():
                return
            if self._eval is not None:
                self.close_eval()
            self._grad_norms()  # right after backward: before any clipping
            self.step += 1
            self._row("step", None)
        except Exception as exc:
            self._fail("after_backward", exc)

    def _fail_quietly(self, name: str) -> None:
        """Remove a hook that is not needed (kept off if the hooks are attached again)."""
        self.broken.add(name)
        handle = self._handles.pop(name, None)
        if handle is not None:
            handle.remove()

    def _loss(self, loss: Any, logits: Any, target: Any) -> None:
        if self._compiling():  # traced by torch.compile: stay out of the graph
            return
        if not (self.model.training and self._grad_on()):
            self._eval_batch(loss, logits, target, self._crit_name, self._reduction, self._ignore)
            return
        self._train_loss(loss, logits, target, self._crit_name, False)

    def _train_loss(self, loss: Any, logits: Any, target: Any, name: str, summed: bool) -> None:
        """One micro-batch's training loss (``summed``: a backward() tensor, scaled by the loop)."""
        if self._eval is not None:
            self.close_eval()
        self._summed = summed
        self._losses_seen = True
        if self._last is not None:  # gradient accumulation: the previous micro-batch's loss
            self._micro.append(loss_scalar(self._last))
        self._last = loss
        d = self._discovery
        if d is not None:
            d.see(logits, target, name, self._input_batch)
            self._input_batch = 0
            self.labels.active = d.task is not None
        if self.labels.active and isinstance(target, self._Tensor) and self.labels.add(target):
            self._fold_labels()
        if (self._no_step and not self.backward_steps) or len(self._micro) >= NO_STEP_AFTER:
            self._loss_steps()

    def _take_losses(self) -> list[Any]:
        """The coming step's losses, detached, oldest first."""
        micro, self._micro = self._micro, []
        if self._last is not None:
            micro.append(loss_scalar(self._last))
            self._last = None
        if self._user_loss:
            return []  # the loop logs train/loss itself: its value is the one kept
        if self._summed and len(micro) > 1:
            # backward() tensors of a custom loss: the loop divided them for accumulation
            micro = [self._torch.stack(micro).sum()]
        return micro

    def _loss_steps(self) -> None:
        """No optimizer step in sight: every training loss becomes a step of its own."""
        self._fast = False
        if not self._no_step:
            self._no_step = True
            say_once(
                f"no-optimizer-step-{id(self)}",
                f"{len(self._micro) + (self._last is not None)} training losses but "
                "optimizer.step() was never called: "
                "the model is not being updated. Recording every loss as its own step.",
            )
        self._end_discovery()
        micro, self._micro = self._micro, []
        if self._last is not None:
            micro.append(loss_scalar(self._last))
            self._last = None
        self.rec.scalars.extend(micro)
        for _ in micro:
            self.step += 1
            self.rec.rows.append((self.step, "loss", 0, None, 1, 0, ()))
        if self.rec.due():
            self.flush()

    def _end_discovery(self) -> None:
        d, self._discovery = self._discovery, None
        if d is None:
            return
        self._fail_quietly("_on_input")
        self.labels.settle(d.task, d.classes)
        self.facts.update(d.result(self.world_size))
        self.facts["compiled"] = self.facts["compiled"] or _facts.is_compiled(self.model)
        self._send_facts()

    # -- evaluation ----------------------------------------------------------------
    def _eval_batch(
        self, loss: Any, logits: Any, target: Any, name: str, reduction: str, ignore: int
    ) -> None:
        task = ev.task_of(name, logits, target)
        classes = ev.num_classes(task, logits)
        auto = split_in_caller()
        if self._eval is not None and (
            (task, classes) != (self._eval.task, self._eval.classes) or auto != self._eval_auto
        ):
            self.close_eval()  # a different kind of batch, or another split, starts a new pass
        if self._eval is None:
            self._fast = False
            self._eval = ev.EvalPass(task, classes, loss.device)
            self._eval_auto = auto
            if auto is not None and self._passes.name is None:  # run.split(...) wins
                self._passes.name_next(auto)
        self._eval.add(loss, logits, target, reduction, ignore)

    def close_eval(self) -> None:
        """End an evaluation pass: its sums become one record at the current step."""
        if self._eval is None:
            return
        done, self._eval = self._eval, None
        split = self._passes.prefix(self.step)
        self.last_pass = (self.step, split, done.task)
        self.rec.vector("eval", split, self.step, done.acc, {"task": done.task, "split": split})
        self._emit_train_labels()
        self.flush()

    def user_logs_loss(self) -> None:
        """``run.log({"train/loss": ...})``: the loop's own value replaces the captured one."""
        self._losses_seen = self._user_loss = True
        self._fast = False

    def name_split(self, name: str | None) -> None:
        """``run.split(name)``: the evaluation pass that follows belongs to split ``name``."""
        try:
            self.close_eval()
            self._passes.name_next(name)
        except Exception as exc:
            self._fail("split", exc)

    def _emit_train_labels(self) -> None:
        self._fold_labels()
        counts = self.labels.take(self.step)
        if counts is not None:
            self.rec.vector("labels", KEYS.TRAIN_LABELS, self.step, counts)

    def _fold_labels(self) -> None:
        d = self._discovery
        try:
            self.labels.fold(*((d.task, d.classes) if d is not None else ()))
        except Exception as exc:  # targets this code does not understand: no more counting
            self._fail("label counts", exc)

    # -- optimizer steps (hot path) -------------------------------------------------
    def _grad_norms(self) -> None:
        grads = [p.grad for p in self.params]
        if self._all_grads:
            try:
                if self._norm_dtype is None:
                    self._norms = self._torch._foreach_norm(grads)
                else:
                    self._norms = self._torch._foreach_norm(grads, 2, dtype=self._norm_dtype)
                self._present = None
                return
            except TypeError:  # a parameter without a gradient this step
                self._all_grads = False
        present = [i for i, g in enumerate(grads) if g is not None]
        self._all_grads = len(present) == len(grads)
        self._fast = self._fast and self._all_grads
        if not present:
            self._norms, self._present = (), None
            return
        grads = [grads[i] for i in present]
        torch = self._torch
        try:
            self._norms = torch._foreach_norm(grads, 2, dtype=self._norm_dtype)
        except RuntimeError:  # e.g. sparse gradients, which the fused kernel does not take
            self._norms = [
                torch.linalg.vector_norm(g.coalesce().values() if g.is_sparse else g).float()
                for g in grads
            ]
        self._present = None if self._all_grads else present

    def _step_general(self, optimizer: Any, args: tuple, kwargs: dict) -> Any:
        """The step pre-hook (``_on_step``) when the fast path does not take the step.
        ``step(closure)`` (LBFGS, PyTorch Lightning) computes the gradients inside the step:
        record the step after the closure's first call, not before it."""
        if not kwargs and len(args) == 1:  # plain ``optimizer.step()``
            self._record_step(optimizer)
            return None
        # torch passes the optimizer itself as args[0]; a positional closure comes next
        pos = 1 if args and args[0] is optimizer else 0
        closure = kwargs.get("closure", args[pos] if len(args) > pos else None)
        if not callable(closure) or "_on_step" in self.broken:
            self._record_step(optimizer)
            return None
        done = False

        def closure_then_record() -> Any:
            nonlocal done
            loss = closure()
            if not done:  # LBFGS calls it many times per step; the first sees the step's gradients
                done = True
                self._record_step(optimizer)
            return loss

        if "closure" in kwargs:
            return args, {**kwargs, "closure": closure_then_record}
        return (*args[:pos], closure_then_record, *args[pos + 1 :]), kwargs

    def _record_step(self, optimizer: Any) -> None:
        """Just before ``optimizer.step()`` updates the weights: record this step.

        Gradients, learning rates and weight decays are all final here (a
        scheduler steps after the optimizer), so one hook per step suffices.
        """
        try:
            if self._eval is not None:
                self.close_eval()
            if self._compiling():
                return
            if self._cands:
                self._take_candidates()
            if self._norms is None:
                self._grad_norms()
            if self._scaler:
                # a fused optimizer under GradScaler unscales inside its kernel: by this much
                for name in ("grad_scale", "found_inf"):
                    t = getattr(optimizer, name, None)
                    if isinstance(t, self._Tensor):
                        self._extras.append((name, t))
            self._no_step = False
            self.step += 1
            self._row("step", optimizer)
        except Exception as exc:
            self._fail("_on_step", exc)

    def _row(self, kind: RowKind, optimizer: Any) -> None:  # noqa: C901
        """Record the step being taken (or skipped)."""
        step, rec = self.step, self.rec
        scalars = rec.scalars
        norms, self._norms = self._norms, None
        n_norms = 0
        if norms is not None:
            scalars.extend(norms)
            n_norms = len(norms)
        losses = self._take_losses()
        scalars.extend(losses)
        if optimizer is not None:
            hyper = [(g["lr"], g.get("weight_decay")) for g in optimizer.param_groups]
            if hyper != self._hyper_last:
                self._hyper(hyper)
        n_pnorms = 0
        if (step == 1 or step % PARAM_NORM_EVERY == 0) and self.params:
            with self._torch.no_grad():
                pnorms = self._torch._foreach_norm(self.params, 2, dtype=self._norm_dtype)
            scalars.extend(pnorms)
            n_pnorms = len(pnorms)
        extras: tuple = ()
        if self._extras:
            extras = tuple(name for name, _ in self._extras)
            scalars.extend(t for _, t in self._extras)
            self._extras = []
        rec.rows.append((step, kind, n_norms, self._present, len(losses), n_pnorms, extras))
        if step >= self._update_next and self.params:
            self._update_work(step, kind == "step")
        if step == NO_LOSS_AFTER and not self._losses_seen:
            self._no_loss(step)
        if self._discovery is not None or self._facts_dirty:
            self._end_discovery()
            if self._facts_dirty:
                self._send_facts()
        if self.labels.due(step):
            self._emit_train_labels()
        if len(self.labels.targets) >= self.labels.cap:
            self._fold_labels()
        if rec.due():
            self.flush()
        self._refresh_fast()

    # -- update size ||dw|| / ||w|| (see _updates) ---------------------------------------
    def _update_work(self, step: int, begin: bool = True) -> None:
        """Step ``step`` is about to change the weights (with no optimizer: its backward() just
        ran).  The update measured at an earlier step is complete by now: read it.  Then begin
        measuring this step's when it is due (``begin``: the step really updates).

        Ending a measurement here rather than in an optimizer post-step hook saves registering
        and removing a hook per measurement (~45 us on the CPU, cold); the weights do not change
        between two steps, so the update read is the same."""
        if self._updates.pending:
            self._end_update()
        if begin and _updates.due(step):
            self._updates.begin(step)
            self._update_next = step + 1
        else:
            self._update_next = _updates.next_due(step)

    def _end_update(self) -> None:
        got = self._updates.end()
        if got is not None:
            self.rec.vector("update", PREFIXES.UPDATE_RATIO, got[0], got[1])

    def _no_loss(self, step: int) -> None:
        """No training loss after the first steps: say what to do, once, and mark the run."""
        say_once(
            f"no-loss-{id(self)}",
            f"no training loss captured in {step} steps: pass the criterion "
            "(fitscope.watch(model, optimizer, criterion)), use a torch.nn.functional loss, "
            'call backward() on the loss, or log it with run.log({"train/loss": loss})',
        )
        self.rec.scalar(KEYS.NO_LOSS_CAPTURED, step, 1.0)

    def _hyper(self, hyper: list[tuple[Any, Any]]) -> None:
        """The learning rates or weight decays changed (or are tensors): record them."""
        self._hyper_last = hyper
        host_lrs: list = []
        self._tensor_lr = False
        for i, (lr, _) in enumerate(hyper):
            if isinstance(lr, (int, float)):
                host_lrs.append(float(lr))
                continue
            host_lrs.append(None)
            if isinstance(lr, self._Tensor):  # changes in place, so copy it every step
                self._tensor_lr = True
                self._extras.append((i, lr.detach().clone().reshape(())))
        host_wds = [float(w) if isinstance(w, (int, float)) else None for _, w in hyper]
        if self._tensor_lr:
            self._hyper_last = None  # a tensor changes in place: come back here every step
        self._hyper_one = self._hyper_last[0] if self._hyper_last and len(hyper) == 1 else None
        self.rec.hyper(self.step, host_lrs, host_wds)

    # -- clip_grad_norm_ and GradScaler (via _patches) -------------------------------
    @guarded
    def before_clip(self, parameters: Any, max_norm: Any) -> None:
        """``clip_grad_norm_`` is about to rescale gradients: measure them first."""
        first = parameters
        if isinstance(parameters, (list, tuple)):
            first = parameters[0] if parameters else None
        if isinstance(first, self._Tensor) and id(first) not in self._param_ids:
            return  # clipping some other model's parameters
        if isinstance(max_norm, (int, float)) and self.facts["grad_clip"] != float(max_norm):
            self.facts["grad_clip"] = float(max_norm)
            self._facts_dirty = True
            self._fast = False
            if self.backward_steps:
                self._send_facts()
        if self.backward_steps:
            return  # the step was recorded right after backward(), before this clipping
        if self._norms is None:
            self._grad_norms()

    @guarded
    def scaler_step_begin(self, scaler: Any) -> int:
        enabled = getattr(scaler, "is_enabled", lambda: False)()
        self._scaler = bool(enabled)
        self._fast = self._fast and not enabled
        if enabled and not self.facts["amp"]:
            self.facts["amp"] = True
            self._facts_dirty = True
        scale = getattr(scaler, "_scale", None)
        if enabled and isinstance(scale, self._Tensor):
            # update() changes it in place later: keep this step's value
            self._extras.append(("amp_scale", scale.detach().clone()))
        return self.step

    @guarded
    def scaler_step_end(self, step_before: int | None) -> None:
        if step_before is None or self.step != step_before or self.optimizer is None:
            return
        # GradScaler found inf/NaN and did not call optimizer.step(): a skipped step
        if self._norms is None:
            self._grad_norms()
        self.step += 1
        self._row("skipped", self.optimizer)
        self._updates.cancel()

    # -- hand-over -------------------------------------------------------------------
    def _send_facts(self) -> None:
        self._facts_dirty = False
        if self.on_facts is not None:
            self.on_facts(dict(self.facts))

    def flush(self) -> None:
        """Hand what is pending to the sender (training thread).  Training targets wait
        to be counted until the label histogram is due or a bunch is held (``_labels``)."""
        self.rec.pack()


def _loss_in(output: Any, tensor: Any) -> tuple[Any, Any]:
    """``(loss, logits)`` held by a model's output: a dict, an object with ``.loss``, or a
    tuple/list with a 0-d floating tensor (the first tensor of 2+ dimensions is the logits)."""
    if isinstance(output, dict):
        loss, logits = output.get("loss"), output.get("logits")
    elif isinstance(output, (tuple, list)):
        loss = logits = None
        item: Any
        for item in output[:8]:
            if not isinstance(item, tensor):
                continue
            if loss is None and item.dim() == 0 and item.is_floating_point():
                loss = item
            elif logits is None and item.dim() >= 1:
                logits = item
    else:
        loss, logits = getattr(output, "loss", None), getattr(output, "logits", None)
    if not isinstance(loss, tensor) or loss.dim() != 0:
        return None, None
    return loss, logits if isinstance(logits, tensor) else None


def _match(t: Any, cands: list[tuple]) -> tuple | None:
    """The candidate loss ``t`` is, or that ``t`` is a scaled copy of (``loss / k``)."""
    for c in cands:
        if c[0] is t:
            return c
    fn = getattr(t, "grad_fn", None)
    if fn is None or type(fn).__name__ not in _SCALING:
        return None
    parents = [n for n, _ in fn.next_functions if n is not None]
    for c in cands:
        g = getattr(c[0], "grad_fn", None)
        if g is not None and g in parents:
            return c
    return None
