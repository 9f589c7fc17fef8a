"""Update size per layer: ``||w_after - w_before|| / ||w_before||`` over one step.

It stands in for the learning rate where there is none to read (manual SGD) and
tells whether steps are too large or too small whatever the optimizer.  Taken
at steps 1..10, every 10th step up to step 100, every 50th up to step 1000, then
every 100th (``due``): a copy of the weights before the update, then, at the next
step (before it changes the weights), one ``_foreach_sub_`` and two
``_foreach_norm`` passes, all device-side.  One measurement costs ~3-5 norm passes
on small models (each operator's fixed cost dominates there), so after the
early steps, where the diagnosis judges the learning rate, it is taken as often
as the parameter norms, and in long runs half as often.  The recorded vector is
``[||dw_i||..., ||w_i||...]`` per parameter; the decoder sums squares per layer
(keys ``update_ratio/<module>`` and ``update_ratio/total``).

Weight matrices with at least ``SAMPLE_ROWS_FROM`` rows are measured on every
``ROW_STRIDE``-th row (a systematic sample spread over the whole matrix, e.g.
over a whole vocabulary), vectors and small matrices in full: the copy and the
three passes then cost an eighth of the memory and time, so the measurement
stays inside the hook's budget and never holds a second full
copy of a large model.  Both norms come from the same rows, so the ratio is an
estimate of the whole layer's.
"""

from __future__ import annotations

from typing import Any

FIRST = 10  # steps 1..FIRST: every step (lr_too_high reads the first 5 records)
DENSE_EVERY = 10  # then one step in DENSE_EVERY up to DENSE_UNTIL (update_size: 5 records by 60)
DENSE_UNTIL = 100
EVERY = 50  # then one step in EVERY up to SPARSE_FROM, like the parameter norms
SPARSE_FROM = 1000
SPARSE_EVERY = 100  # then one step in SPARSE_EVERY: the steady-state cost halves
ROW_STRIDE = 8
SAMPLE_ROWS_FROM = 64


def due(step: int) -> bool:
    """Whether the update of step ``step`` is measured."""
    if step <= FIRST:
        return step > 0
    return step % _every(step) == 0


def _every(step: int) -> int:
    """The spacing of measurements at ``step`` (past the first ``FIRST`` steps)."""
    if step <= DENSE_UNTIL:
        return DENSE_EVERY
    return EVERY if step <= SPARSE_FROM else SPARSE_EVERY


def next_due(step: int) -> int:
    """The first step after ``step`` that is due."""
    if step < FIRST:
        return max(step, 0) + 1
    every = _every(step + 1)
    return (step // every + 1) * every


class UpdateSize:
    def __init__(self, torch: Any, params: list, norm_dtype: Any) -> None:
        self._torch = torch
        self.params = params
        self._dtype = norm_dtype
        self.step = 0  # the step whose update is being measured (0: none)
        self._before: list | None = None
        self._views: list = []  # the (sampled) weights, as views, while a step is measured
        self._ptrs: list[int] = []
        self._cached: list = []

    def begin(self, step: int) -> None:
        """Just before step ``step`` updates the weights (few, fused operators: this runs
        right after backward, when every extra operator costs several microseconds)."""
        views = self._sampled()
        # detached views: the fused copy and the passes below record no autograd graph
        self._before = self._torch._foreach_mul(views, 1.0)
        self._views = views
        self.step = step

    def _sampled(self) -> list:
        """Detached (row-sampled) views of the weights, made once and made again only when a
        parameter's storage changed (``model.to(...)``, ``p.data = ...``)."""
        ptrs = [p.data_ptr() for p in self.params]
        if ptrs != self._ptrs:
            self._ptrs = ptrs
            self._cached = [
                p.detach()[::ROW_STRIDE]
                if p.dim() >= 2 and p.shape[0] >= SAMPLE_ROWS_FROM
                else p.detach()
                for p in self.params
            ]
        return self._cached

    @property
    def pending(self) -> bool:
        return self._before is not None

    def cancel(self) -> None:
        self._before, self._views, self.step = None, [], 0

    def end(self) -> tuple[int, Any] | None:
        """Just after the update: ``(step, vector)``, or None when nothing was begun."""
        before, views, step = self._before, self._views, self.step
        self.cancel()
        if before is None or not before:
            return None
        torch = self._torch
        if self._dtype is None:
            wn = torch._foreach_norm(before)
            torch._foreach_sub_(before, views)  # in place: no second copy
            dn = torch._foreach_norm(before)
        else:
            wn = torch._foreach_norm(before, 2, dtype=self._dtype)
            torch._foreach_sub_(before, views)
            dn = torch._foreach_norm(before, 2, dtype=self._dtype)
        return step, torch.stack([*dn, *wn])
