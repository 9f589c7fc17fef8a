"""Update size per layer: ``||w_after - w_before|| / ||w_before||`` over one step.

It stands in for the learning rate where there is none to read (manual SGD) and
tells whether steps are too large or too small whatever the optimizer.  Taken
at steps 1..10 and then every 10th step: a copy of the weights before the
update, then, after it, one ``_foreach_sub`` and two ``_foreach_norm`` passes,
all device-side.  The recorded vector is ``[||dw_i||..., ||w_i||...]`` per
parameter; the decoder sums squares per layer (keys ``update_ratio/<module>``
and ``update_ratio/total``).
"""

from __future__ import annotations

from typing import Any

EVERY = 10  # after the first EVERY steps, one step in EVERY
FIRST = 10


def due(step: int) -> bool:
    return 0 < step <= FIRST or step % EVERY == 0


def next_due(step: int) -> int:
    """The first step after ``step`` that is due."""
    if step < FIRST:
        return step + 1
    return (step // EVERY + 1) * EVERY


class UpdateSize:
    def __init__(self, torch: Any, params: list, norm_dtype: Any) -> None:
        self._torch = torch
        self.params = params
        self._dtype = norm_dtype
        self.step = 0  # the step whose update is being measured (0: none)
        self._before: list | None = None

    def begin(self, step: int) -> None:
        """Just before step ``step`` updates the weights."""
        torch = self._torch
        with torch.no_grad():
            self._before = [p.detach().clone() for p in self.params]
        self.step = step

    @property
    def pending(self) -> bool:
        return self._before is not None

    def cancel(self) -> None:
        self._before, self.step = None, 0

    def end(self) -> tuple[int, Any] | None:
        """Just after the update: ``(step, vector)``, or None when nothing was begun."""
        before, step = self._before, self.step
        self.cancel()
        if before is None or not before:
            return None
        torch = self._torch
        with torch.no_grad():
            params = [p.detach() for p in self.params]
            if self._dtype is None:
                wn = torch._foreach_norm(before)
                torch._foreach_sub_(before, params)  # in place: no second copy of the model
                dn = torch._foreach_norm(before)
            else:
                wn = torch._foreach_norm(before, 2, dtype=self._dtype)
                torch._foreach_sub_(before, params)
                dn = torch._foreach_norm(before, 2, dtype=self._dtype)
            vec = torch.stack([*dn, *wn]).float()
        return step, vec
