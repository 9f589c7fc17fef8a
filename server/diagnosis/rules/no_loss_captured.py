"""``no_loss_captured``: optimizer steps arrive but no training loss at all.

The hook records ``train/loss`` from a criterion module, ``torch.nn.functional``
losses, a model output holding its loss, or the tensor ``backward()`` is called
on.  A loop that hides its loss from all of these (``torch.autograd.backward``,
a loss function imported by name before ``watch``) still gets gradient norms and
learning rates; this says, once, what to pass or log so the loss rules can run.
The hook sends ``fitscope/no_loss_captured`` at the step it noticed; the rule
itself only needs the missing series, so runs logged by hand are covered too.
"""

from __future__ import annotations

from collections.abc import Mapping

from fitscope.protocol import KEYS

from ..base import Context, Finding, Rule

HOLD_STEPS = 20  # steps with gradients or learning rates but no loss (the hook waits as long)

REMEDY = (
    "Pass the criterion: fitscope.watch(model, optimizer, criterion); or compute the loss with "
    "a torch.nn.functional loss (F.cross_entropy, ...) or return it from the model "
    "(a (logits, loss) tuple, a dict or an object with .loss) and call loss.backward(); "
    f'or log it yourself after optimizer.step(): run.log({{"{KEYS.TRAIN_LOSS}": loss}}).'
)


def check(ctx: Context, p: Mapping[str, float]) -> Finding | None:
    st = ctx.state
    if st.train.count > 0 or st.steps_seen < int(p["hold_steps"]):
        return None
    return Finding(
        "info",
        1,
        f"No training loss has been recorded in {st.steps_seen} steps: the loss rules "
        "(divergence, plateau, overfitting...) cannot run.",
        REMEDY,
        {"series": [KEYS.GRAD_NORM_TOTAL], "start_step": 1, "end_step": ctx.step},
    )


RULE = Rule(
    "no_loss_captured",
    "step",
    check,
    {"hold_steps": HOLD_STEPS},
    clear_after=1,
    during_warmup=True,
)
