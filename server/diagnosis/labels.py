"""Human labels for the evidence keys of the alerts, for every place that shows an alert (run
page, terminal, webhook): ``evidence["best_val_loss"]`` reads "best validation loss".

``EVIDENCE_LABELS`` is the mapping; ``evidence_labels(evidence)`` the part an alert needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

EVIDENCE_LABELS: dict[str, str] = {
    "series": "charts",
    "start_step": "from step",
    "end_step": "to step",
    "caused_by": "likely caused by",
    "kind": "kind",
    # losses
    "best": "best training loss",
    "best_step": "step of the best value",
    "now": "training loss now",
    "ratio": "ratio to the reference",
    "mean": "mean training loss",
    "swing": "swing of the training loss",
    "noise_ratio": "swings / mini-batch noise",
    "loss": "training loss (smoothed)",
    "loss_low": "lowest training loss during the ramp",
    "first_loss": "first training loss",
    "early_max": "highest loss in the first 10 steps",
    "chance": "chance-level loss (ln K)",
    "train_loss": "training loss",
    "val_loss": "validation loss",
    "best_val_loss": "best validation loss",
    "val_loss_mean3": "validation loss (mean of 3 evaluations)",
    "best_val_loss_mean3": "best validation loss (mean of 3 evaluations)",
    "evals_since_best": "evaluations since the best",
    "gl": "generalisation loss (above the best)",
    "train_drop": "training loss drop since the best",
    "noise": "evaluation-to-evaluation noise",
    "fraction_of_chance": "fraction of the chance-level loss",
    "improvement": "improvement over the window",
    "progress": "loss progress over the window",
    # gradients and updates
    "baseline": "gradient norm before (median)",
    "peak": "gradient norm peak",
    "rising": "share of steps where the norm rose",
    "growth": "gradient norm growth",
    "step_change": "median change per step",
    "rms": "gradient RMS per entry",
    "layers": "layers",
    "update_ratio": "update size ||dw|| / ||w||",
    "max_norm": "clip_grad_norm_ max_norm",
    "clipped_share": "share of steps clipped",
    "median_norm": "median gradient norm (before clipping)",
    "nonfinite_losses": "non-finite training losses",
    "nonfinite_gradients": "non-finite gradient norms in a row",
    "amp": "mixed precision (AMP)",
    # learning rate
    "lr": "learning rate",
    "lr_start": "first learning rate",
    "factor": "learning rate / its first value",
    "from": "learning rate before",
    "to": "learning rate after",
    # validation and calibration
    "confidence": "mean confidence",
    "accuracy": "validation accuracy",
    "ece": "expected calibration error",
    "samples": "validation samples",
    # labels
    "tv": "total variation distance",
    "p_value": "chi-square p-value",
    "dispersion": "over-dispersion of label counts",
    "train": "training label shares",
    "val": "validation label shares",
}


def evidence_labels(evidence: Mapping[str, Any]) -> dict[str, str]:
    """Labels of the keys present in one alert's evidence (unknown keys keep their name)."""
    return {k: EVIDENCE_LABELS.get(k, k.replace("_", " ")) for k in evidence}
