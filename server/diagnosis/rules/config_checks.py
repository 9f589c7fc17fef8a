"""Configuration checks: ``adam_weight_decay`` and ``large_batch_no_warmup``.

They read the optimizer and batch settings captured by the hook (``config["fitscope"]``) and
the learning rates it records; nothing else about the run.
"""

from __future__ import annotations

from collections.abc import Mapping

from fitscope.protocol import KEYS, PREFIXES

from ..base import Context, Finding, Rule, fmt

# TRAINING_PRACTICES (000): prefer AdamW to Adam when using weight decay; Adam's L2-style decay
# is "a hidden reason many reproductions fail". Decoupled-decay variants are fine.
COUPLED_DECAY_OPTIMIZERS = ("Adam", "Adamax", "NAdam", "RAdam", "Adagrad", "Adadelta", "RMSprop")
# TRAINING_PRACTICES (000, 002): above a batch of 256, use a warm-up.
LARGE_BATCH = 256
# look for an LR increase (a warm-up) within the first 10 optimizer steps
WARMUP_PROBE_STEPS = 10

ADAM_REMEDY = (
    "Use torch.optim.AdamW (decoupled weight decay), typically with weight_decay around 1e-2 "
    "to 1e-4, and exclude biases and normalisation parameters from decay (a second param group "
    "with weight_decay=0)."
)
BATCH_REMEDY = (
    "Add a linear learning-rate warm-up over the first epochs (e.g. LinearLR or a LambdaLR "
    "ramp, then cosine decay), scale the LR with the batch (new lr = lr x new batch / old "
    "batch), or use a smaller batch with gradient accumulation."
)


def check_adam(ctx: Context, p: Mapping[str, float]) -> Finding | None:
    f = ctx.facts
    if f.optimizer not in COUPLED_DECAY_OPTIMIZERS:
        return None
    bad = [
        (i, float(g.get("weight_decay") or 0.0))
        for i, g in enumerate(f.param_groups)
        if isinstance(g.get("weight_decay"), (int, float))
        and g["weight_decay"] > 0
        and not g.get("decoupled_weight_decay")
    ]
    if not bad:
        return None
    groups = ", ".join(f"group {i}: {fmt(wd)}" for i, wd in bad)
    return Finding(
        "warning",
        1,
        f"{f.optimizer} applies weight_decay ({groups}) as an L2 term inside the adaptive "
        "update, so well-scaled weights are barely decayed; AdamW decouples it.",
        ADAM_REMEDY,
        {"series": [f"{PREFIXES.LR}{i}" for i, _ in bad], "start_step": 1, "end_step": ctx.step},
    )


def check_batch(ctx: Context, p: Mapping[str, float]) -> Finding | None:
    f = ctx.facts
    lr = ctx.state.lr
    if not f.batch_size or lr.steps < p["warmup_probe_steps"]:
        return None
    batch = f.batch_size * max(f.world_size, 1)
    if batch <= p["large_batch"] or lr.early_increase:
        return None
    return Finding(
        "warning",
        1,
        f"Batch size {batch:,}"
        + (f" ({f.batch_size} x {f.world_size} processes)" if f.world_size > 1 else "")
        + f" is above {int(p['large_batch'])} and the learning rate did not ramp up during the "
        f"first {int(p['warmup_probe_steps'])} steps: no warm-up.",
        BATCH_REMEDY,
        {"series": [KEYS.LR_FIRST, KEYS.TRAIN_LOSS], "start_step": 1, "end_step": ctx.step},
    )


ADAM = Rule("adam_weight_decay", "config", check_adam, {}, clear_after=1, during_warmup=True)
BATCH = Rule(
    "large_batch_no_warmup",
    "config",
    check_batch,
    {"large_batch": LARGE_BATCH, "warmup_probe_steps": WARMUP_PROBE_STEPS},
    clear_after=1,
    during_warmup=True,
)
