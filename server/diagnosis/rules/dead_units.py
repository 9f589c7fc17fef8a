"""``dead_units``: a hidden layer gets exactly zero gradient (its ReLUs are dead for every input)."""

from __future__ import annotations

import math
from collections.abc import Mapping

from fitscope.protocol import KEYS, PREFIXES

from ..base import Context, Finding, Rule, step_str

# literature §3.2 R9: g_l == 0 exactly for m = 20 consecutive steps while the output layer's
# gradient is not (DeepLocalize: "mean gradient == 0"); exact zeros separate it from vanishing.
HOLD_STEPS = 20

REMEDY = (
    "Its ReLU units output 0 for every input, so nothing before them learns. Use LeakyReLU/ELU/"
    "GELU, lower the learning rate (large updates kill units), use He initialisation with "
    "zero or small positive biases, add BatchNorm before the activation, and check that inputs "
    "are normalised."
)


def check(ctx: Context, p: Mapping[str, float]) -> Finding | None:
    g = ctx.state.grads
    if not (math.isfinite(g.last_layer_norm) and g.last_layer_norm > 0):
        return None
    hold = int(p["hold_steps"])
    dead = {n: s for n, s in g.zero_since.items() if g.last_step - s + 1 >= hold}
    if not dead:
        return None
    order = [n for n in g.order if n in dead]
    # the deepest dead layer is the culprit: everything before it gets zero gradient as a result
    culprit = order[-1]
    onset = min(dead.values())
    return Finding(
        "critical",
        onset,
        f"Layer {culprit!r} has received exactly zero gradient since step {step_str(onset)} "
        f"({g.last_step - onset + 1} steps)"
        + (f", and so have the {len(order) - 1} layer(s) before it" if len(order) > 1 else "")
        + ", while the output layer still gets gradient: its units are dead.",
        f"Layer {culprit!r} is dead. " + REMEDY,
        {
            "series": [f"{PREFIXES.GRAD_NORM}{n}" for n in order[-3:]] + [KEYS.GRAD_NORM_TOTAL],
            "start_step": onset,
            "end_step": ctx.step,
            "layers": order[:20],
        },
    )


RULE = Rule("dead_units", "step", check, {"hold_steps": HOLD_STEPS}, clear_after=20)
