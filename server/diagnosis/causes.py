"""The root-cause order: which alert can explain which, and which symptoms it silences.

A NaN that follows exploding gradients that follow a learning-rate jump is one story: the
NaN alert carries ``evidence.caused_by`` pointing at the exploding-gradients alert, which
points at the LR jump. Generic symptoms (a plateau, an early-stop hint, underfitting...) are
not raised at all while a more specific cause is open; they would only repeat it.
"""

from __future__ import annotations

# effect -> the rules that can cause it, most specific (most root) first
CAUSES: dict[str, tuple[str, ...]] = {
    "non_finite": (
        "lr_jump",
        "grad_accumulating",
        "large_batch_no_warmup",
        "exploding_gradients",
        "divergence",
    ),
    "divergence": ("lr_jump", "grad_accumulating", "large_batch_no_warmup", "exploding_gradients"),
    "exploding_gradients": ("lr_jump", "grad_accumulating", "large_batch_no_warmup"),
    "vanishing_gradients": ("dead_units",),
    "dead_units": ("lr_jump", "exploding_gradients", "divergence"),
    "no_update": ("divergence", "exploding_gradients", "non_finite"),
    "not_learning": (
        "no_update",
        "dead_units",
        "vanishing_gradients",
        "lr_jump",
        "divergence",
        "non_finite",
    ),
    "plateau": ("no_update", "dead_units", "vanishing_gradients", "not_learning"),
    "underfitting": ("no_update", "dead_units", "vanishing_gradients", "not_learning"),
    "underconfidence": ("no_update", "dead_units", "vanishing_gradients", "not_learning"),
    "overconfidence": ("overfitting",),
    "early_stop": ("overfitting", "divergence", "non_finite", "not_learning", "no_update"),
    "overfitting": ("label_shift",),
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
    "grad_accumulating": frozenset({"not_learning", *_GENERIC}),
    "overfitting": frozenset({"plateau"}),
}

# a cause must have started no later than this many steps after its effect to explain it
ONSET_SLACK = 10
# a resolved cause still explains effects that start within this many steps of its end
RECENT = 200
