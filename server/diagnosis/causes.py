"""The root-cause order: which alert can explain which, and which symptoms it silences.

A NaN that follows exploding gradients that follow a learning-rate jump is one story: the
NaN alert carries ``evidence.caused_by`` pointing at the exploding-gradients alert, which
points at the LR jump. Generic symptoms (a plateau, an early-stop hint, underfitting...) are
not raised at all while a more specific cause is open; they would only repeat it.
"""

from __future__ import annotations

# effect -> the rules that can cause it, most specific (most root) first
CAUSES: dict[str, tuple[str, ...]] = {
    # a NaN names the explosion that led to it (which names its own cause, e.g. the LR)
    "non_finite": (
        "exploding_gradients",
        "lr_jump",
        "lr_too_high",
        "warmup_runaway",
        "grad_accumulating",
        "large_batch_no_warmup",
        "divergence",
    ),
    "divergence": (
        "lr_jump",
        "warmup_runaway",
        "lr_too_high",
        "grad_accumulating",
        "large_batch_no_warmup",
        "exploding_gradients",
        "initial_loss",
    ),
    "exploding_gradients": (
        "lr_jump",
        "warmup_runaway",
        "lr_too_high",
        "grad_accumulating",
        "large_batch_no_warmup",
    ),
    "lr_too_high": ("warmup_runaway",),
    "update_size": ("lr_jump", "warmup_runaway", "lr_too_high", "exploding_gradients"),
    "vanishing_gradients": ("lr_too_high", "dead_units"),
    "dead_units": ("lr_jump", "warmup_runaway", "lr_too_high", "exploding_gradients", "divergence"),
    "no_update": ("lr_too_high", "update_size", "divergence", "exploding_gradients", "non_finite"),
    "grad_clipping": ("lr_jump", "warmup_runaway", "lr_too_high", "grad_accumulating"),
    "not_learning": (
        "lr_too_high",
        "update_size",
        "no_update",
        "dead_units",
        "vanishing_gradients",
        "lr_jump",
        "warmup_runaway",
        "divergence",
        "non_finite",
        "grad_clipping",
    ),
    "plateau": ("lr_too_high", "no_update", "dead_units", "vanishing_gradients", "not_learning"),
    "underfitting": (
        "lr_too_high",
        "no_update",
        "dead_units",
        "vanishing_gradients",
        "not_learning",
        "grad_clipping",
    ),
    "underconfidence": (
        "lr_too_high",
        "no_update",
        "dead_units",
        "vanishing_gradients",
        "not_learning",
    ),
    "overconfidence": ("overfitting",),
    "early_stop": (
        "overfitting",
        "warmup_runaway",
        "divergence",
        "non_finite",
        "not_learning",
        "no_update",
    ),
    "overfitting": ("label_shift", "warmup_runaway"),
}

_GENERIC = ("plateau", "underfitting", "early_stop", "underconfidence", "overconfidence")
# while the key is open, these rules are not raised (they can only restate it)
SILENCES: dict[str, frozenset[str]] = {
    "non_finite": frozenset(
        {
            "divergence",
            "not_learning",
            "overfitting",
            "vanishing_gradients",
            "dead_units",
            "grad_accumulating",
            "no_update",
            *_GENERIC,
        }
    ),
    "no_update": frozenset(
        {"not_learning", "vanishing_gradients", "dead_units", "overfitting", *_GENERIC}
    ),
    "dead_units": frozenset({"not_learning", "vanishing_gradients", *_GENERIC}),
    "vanishing_gradients": frozenset({"not_learning", *_GENERIC}),
    "not_learning": frozenset(_GENERIC),
    "divergence": frozenset({"not_learning", "overfitting", "dead_units", "no_update", *_GENERIC}),
    "exploding_gradients": frozenset(
        {"dead_units", "no_update", "overfitting", "underfitting", "plateau"}
    ),
    "lr_jump": frozenset({"overfitting", "dead_units", *_GENERIC}),
    # a too-high LR explains a collapsed model: its generic symptoms would only restate it (the
    # specific ones, dead units and vanishing gradients, are raised and linked to it)
    "lr_too_high": frozenset({"not_learning", "underfitting", "no_update", *_GENERIC}),
    "warmup_runaway": frozenset({"overfitting", *_GENERIC}),
    "grad_accumulating": frozenset({"not_learning", "overfitting", *_GENERIC}),
    "overfitting": frozenset({"plateau"}),
}

# a cause must have started no later than this many steps after its effect to explain it
ONSET_SLACK = 10
# a resolved cause still explains effects that start within this many steps of its end
RECENT = 200
