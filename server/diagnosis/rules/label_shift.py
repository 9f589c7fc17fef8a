"""``label_shift``: validation label proportions unlike the training ones."""

from __future__ import annotations

from collections.abc import Mapping

from fitscope.protocol import KEYS

from ..base import Context, Finding, Rule
from ..stats import chi2_sf
from ..windows import chi2_homogeneity

# TRAINING_PRACTICES (000): a validation label distribution very different from training is a
# warning sign. "Very different": total variation distance > 0.1, and a chi-square test of
# homogeneity rejects equal proportions at p < 0.001 (so small samples do not trigger it).
TV = 0.1
P_VALUE = 1e-3
MIN_TRAIN = 100
MIN_VAL = 50
MIN_SNAPSHOTS = 1  # dispersion estimates needed (training label snapshots beyond the first)

REMEDY = (
    "Check how the validation set was split: it should come from the same source as the "
    "training data (split by time window for time series, by patient for medical data), with "
    "stratified sampling. Look at the label proportions of both sets before training."
)


def check(ctx: Context, p: Mapping[str, float]) -> Finding | None:
    lab = ctx.state.labels
    tr, va = lab.train, lab.val
    k = max(len(tr), len(va))
    tr, va = tr + [0.0] * (k - len(tr)), va + [0.0] * (k - len(va))
    n_tr, n_va = sum(tr), sum(va)
    if k < 2 or n_tr < p["min_train"] or n_va < p["min_val"]:
        return None
    ptr = [c / n_tr for c in tr]
    pva = [c / n_va for c in va]
    tv = 0.5 * sum(abs(a - b) for a, b in zip(ptr, pva, strict=True))
    stat, dof = chi2_homogeneity(tr, va)
    # counts are not independent samples when they are tokens (or any correlated stream): the
    # statistic is divided by the over-dispersion measured between training snapshots, which
    # takes two snapshots; before that the test waits
    if lab.disp_n < p["min_snapshots"]:
        return None
    dispersion = max(1.0, lab.disp_sum / lab.disp_n)
    pval = chi2_sf(stat / dispersion, dof)
    if tv <= p["tv"] or pval >= p["p_value"]:
        return None
    worst = max(range(k), key=lambda i: abs(ptr[i] - pva[i]))
    return Finding(
        "warning",
        lab.val_step,
        f"Validation labels are distributed unlike training labels: total variation distance "
        f"{tv:.2f} (chi-square p = {pval:.1e}); class {worst} is {ptr[worst]:.1%} of training "
        f"labels but {pva[worst]:.1%} of validation labels.",
        REMEDY,
        {
            "series": [KEYS.TRAIN_LABELS, KEYS.VAL_LABELS],
            "start_step": lab.val_step,
            "end_step": lab.val_step,
            "tv": tv,
            "p_value": pval,
            "dispersion": dispersion,
            "train": ptr[:50],
            "val": pva[:50],
        },
    )


RULE = Rule(
    "label_shift",
    "labels",
    check,
    {
        "tv": TV,
        "p_value": P_VALUE,
        "min_train": MIN_TRAIN,
        "min_val": MIN_VAL,
        "min_snapshots": MIN_SNAPSHOTS,
    },
    clear_after=1,
    during_warmup=True,
)
