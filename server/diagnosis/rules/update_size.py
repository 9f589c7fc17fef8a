"""``update_size``: the updates are far too large or far too small for the weights.

The hook records ||dw|| / ||w|| over one step (``update_ratio/<layer>``, at steps 1-10, every
10th to step 100, every 50th to 1000, then every 100th). SageMaker Debugger's weight-update-ratio rule and the usual rule of thumb put healthy
training around 1e-3; the healthy runs of our benchmark stay below 0.03 per layer after the
first 10 steps. Too large (above 0.1 in some layer, median of its last 5 records): the step
size is of the order of the weights themselves, the learning rate is too high for that layer.
Too small (below 1e-6 in every layer that moves at all, ``windows.TINY_UPDATE``, while the loss
does not improve): the
model barely changes, the learning rate is far too low. Layers with an exact 0 are frozen (or
not updated at all, which ``no_update`` reports) and are left out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from fitscope.protocol import KEYS, PREFIXES

from ..base import Context, Finding, Rule, fmt, step_str
from ..stats import median, rel_change

LARGE = 0.1
MIN_RECORDS = 5
AFTER_STEP = 10  # the first updates of Adam are large relative to a fresh init: not judged
TINY_RECORDS = 3  # tiny updates in 3 records in a row (windows.TINY_UPDATE = SMALL) ...
MIN_PROGRESS_STEPS = 20  # ... and over at least 20 steps since, the loss improved < 1%
MIN_PROGRESS = 0.01

REMEDY_LARGE = (
    "Lower the learning rate (or that layer's param-group LR) until updates are around 1e-3 "
    "of the weights; check for a schedule that raised it, and clip gradients."
)
REMEDY_SMALL = (
    "Raise the learning rate (try 10x steps, or an LR range test), check the scheduler did not "
    "decay it to almost 0, and check the loss scale (a loss divided by a large constant)."
)


def check(ctx: Context, p: Mapping[str, float]) -> Finding | None:
    u = ctx.state.updates
    if not u.layers:
        return None
    if u.first_step >= p["after_step"]:
        meds = {
            n: median(xs)
            for n, xs in u.layers.items()
            if len(xs) >= p["min_records"] and all(math.isfinite(x) for x in xs)
        }
        if meds:
            name, top = max(meds.items(), key=lambda kv: kv[1])
            if top > p["large"]:
                return _finding(ctx, "large", name, top, u.first_step, p)
    # too small: judged from the first records on (tiny updates are not an artefact of the
    # start), once the loss has had 20 steps to move
    if u.tiny_records >= p["tiny_records"]:
        t = ctx.state.train
        window = t.ema.since(max(t.baseline_step, u.tiny_since))
        if len(window) >= p["min_progress_steps"]:
            m = max(1, len(window) // 5)
            gain = rel_change(sum(window[:m]) / m, sum(window[-m:]) / m)
            if math.isfinite(gain) and gain < p["min_progress"]:
                top = max(xs[-1] for xs in u.layers.values() if xs)
                return _finding(ctx, "small", "all", top, u.tiny_since, p)
    return None


def _finding(
    ctx: Context, kind: str, layer: str, value: float, onset: int, p: Mapping[str, float]
) -> Finding:
    if kind == "large":
        what = (
            f"Layer {layer!r} changes by {fmt(value)} of its norm per step (median of its last "
            f"{int(p['min_records'])} records since step {step_str(onset)}; healthy: ~1e-3)."
        )
    else:
        what = (
            f"Every layer changes by less than {fmt(value)} of its norm per step (since step "
            f"{step_str(onset)}; healthy: ~1e-3) and the loss is not improving."
        )
    return Finding(
        "warning",
        onset,
        what,
        REMEDY_LARGE if kind == "large" else REMEDY_SMALL,
        {
            "series": [f"{PREFIXES.UPDATE_RATIO}{layer}", KEYS.UPDATE_RATIO_TOTAL, KEYS.TRAIN_LOSS],
            "start_step": onset,
            "end_step": ctx.step,
            "kind": kind,
            "update_ratio": value,
            "layers": [layer],
        },
    )


RULE = Rule(
    "update_size",
    "step",
    check,
    {
        "large": LARGE,
        "min_records": MIN_RECORDS,
        "after_step": AFTER_STEP,
        "tiny_records": TINY_RECORDS,
        "min_progress_steps": MIN_PROGRESS_STEPS,
        "min_progress": MIN_PROGRESS,
    },
    clear_after=50,
)
