"""``no_update``: optimizer steps happen but the parameters do not move.

Seen as: no gradient at all when ``optimizer.step()`` runs (``zero_grad()`` between
``backward()`` and ``step()``, or no ``backward()``), gradients that are exactly zero,
a learning rate of 0, or parameter norms identical across snapshots.
"""

from __future__ import annotations

from collections.abc import Mapping

from fitscope.protocol import KEYS

from ..base import Context, Finding, Rule, step_str

# literature §3.2 R5c "frozen" (DeepLocalize/DeepDiagnosis meanResult over 5 checks; SageMaker
# UnchangedTensor over 3 steps): we ask for 20 optimizer steps, as for the other gradient rules.
HOLD_STEPS = 20
# parameter norms are captured every 50 steps; two identical snapshots in a row (100 steps).
UNCHANGED_SNAPSHOTS = 2

# each way of not updating has its own remedy: none may suggest a cause its evidence rules out
REMEDIES = {
    "no_grad": (
        "Check the order in the loop: optimizer.zero_grad(), loss.backward(), optimizer.step() "
        "(zero_grad() between backward() and step() wipes the gradients), and that the loss is "
        "not detached from the model (no .item(), .detach() or torch.no_grad() before backward())."
    ),
    "zero_grad": (
        "Every gradient is exactly zero: check that the loss depends on the parameters (not "
        "detached, no integer casts or argmax in the path), that the layers are not all frozen, "
        "and that no ReLU layer is dead for every input."
    ),
    "zero_lr": (
        "The learning rate is 0: check the scheduler (a warm-up that starts at 0 and never "
        "rises, a decay that reached 0, a LambdaLR factor of 0) and param_group['lr']."
    ),
    "unchanged": (
        "Check that the optimizer was built over this model's parameters (not a copy's, or "
        "a model re-created after the optimizer), that optimizer.step() is called, and that "
        "the parameters are not frozen. Try to overfit a single batch."
    ),
}
REMEDY = REMEDIES["unchanged"]


def check(ctx: Context, p: Mapping[str, float]) -> Finding | None:
    st = ctx.state
    hold = int(p["hold_steps"])
    if ctx.facts.hooked and st.lr.without_grad >= hold:
        onset = st.lr.without_grad_first
        return _finding(
            ctx,
            onset,
            f"optimizer.step() ran {st.lr.without_grad} times since step {step_str(onset)} "
            "with no gradient on any parameter",
            "no_grad",
        )
    g = st.grads
    if g.zero_total_streak >= hold and g.last_step >= ctx.step - 1:
        return _finding(
            ctx,
            g.zero_total_first,
            f"every gradient has been exactly zero for {g.zero_total_streak} steps "
            f"since step {step_str(g.zero_total_first)}",
            "zero_grad",
        )
    if st.lr.zero_streak >= hold:
        onset = ctx.step - st.lr.zero_streak + 1
        return _finding(
            ctx, onset, f"the learning rate has been 0 for {st.lr.zero_streak} steps", "zero_lr"
        )
    pr = st.params
    if pr.unchanged_streak >= p["unchanged_snapshots"] and pr.last_step >= ctx.step - 60:
        return _finding(
            ctx,
            pr.unchanged_since,
            f"no parameter norm has changed between step {step_str(pr.unchanged_since)} "
            f"and step {step_str(pr.last_step)}",
            "unchanged",
        )
    return None


def _finding(ctx: Context, onset: int, what: str, kind: str) -> Finding:
    return Finding(
        "critical",
        onset,
        f"The model is not being updated: {what}.",
        REMEDIES[kind],
        {
            "series": [KEYS.GRAD_NORM_TOTAL, KEYS.TRAIN_LOSS],
            "start_step": onset,
            "end_step": ctx.step,
            "kind": kind,
        },
    )


RULE = Rule(
    "no_update",
    "step",
    check,
    {"hold_steps": HOLD_STEPS, "unchanged_snapshots": UNCHANGED_SNAPSHOTS},
    clear_after=20,
    during_warmup=True,
)
