"""``grad_clipping``: ``clip_grad_norm_`` clips most steps, so it sets the update size.

Clipping is meant to cut the rare spike (Google's tuning playbook: pick the threshold near the
90th percentile of the gradient norm). When more than half of the recent steps exceed
``max_norm`` (``config["fitscope"]["grad_clip"]``; the hook records ``grad_norm/total`` before
clipping), the threshold effectively rescales the learning rate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from fitscope.protocol import KEYS

from ..base import Context, Finding, Rule, fmt, pct
from ..stats import median

WINDOW = 100  # recent steps examined
MAX_SHARE = 0.5  # "more than half of recent steps clipped"
MIN_STEPS = 100  # after the first 100 steps (early norms are large in healthy runs)

REMEDY = (
    "Raise max_norm to around the 90th percentile of the unclipped gradient norm (the "
    "grad_norm/total chart), or lower the learning rate if the norms are large because "
    "training is unstable."
)


def check(ctx: Context, p: Mapping[str, float]) -> Finding | None:
    clip = ctx.facts.grad_clip
    g = ctx.state.grads.total
    w = int(p["window"])
    if not clip or clip <= 0 or ctx.state.steps_seen < p["min_steps"] or len(g) < w:
        return None
    vals = [v for v in g.last(w) if math.isfinite(v)]
    if len(vals) < 0.9 * w:
        return None
    share = sum(v > clip for v in vals) / len(vals)
    if share <= p["max_share"]:
        return None
    med = median(vals)
    onset = g.steps[-w]
    return Finding(
        "warning",
        onset,
        f"Gradient clipping at max_norm {fmt(clip)} cut {pct(share)} of the last {len(vals)} "
        f"steps (median gradient norm {fmt(med)}, {fmt(med / clip, 2)}x the threshold).",
        REMEDY,
        {
            "series": [KEYS.GRAD_NORM_TOTAL],
            "start_step": onset,
            "end_step": ctx.step,
            "max_norm": clip,
            "clipped_share": share,
            "median_norm": med,
        },
    )


RULE = Rule(
    "grad_clipping",
    "step",
    check,
    {"window": WINDOW, "max_share": MAX_SHARE, "min_steps": MIN_STEPS},
    clear_after=50,
)
