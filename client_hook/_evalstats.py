"""Device-side sums of an evaluation pass and of training labels.

Everything here is tensor math that stays on the device: no ``.item()``, no
boolean-mask indexing, no ``bincount`` (each of those waits for the device).
Histograms are built with ``index_add_`` into fixed-size buffers instead.

An evaluation accumulator is one float32 vector:
``[loss_sum, n, correct, counts[15], correct[15], conf_sum[15], labels[C]]``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

CONF_BINS = 15  # Guo et al. 2017 use M = 15 equal-width bins for ECE
HEAD = 3  # loss_sum, n, correct
MAX_LABEL_CLASSES = 4096  # label histograms above this many classes (e.g. vocabularies) are skipped
CHUNK_ELEMENTS = 1 << 22  # softmax over at most this many logits at a time, to bound memory
DEFAULT_IGNORE_INDEX = -100  # torch's and Hugging Face's default


class EvalSums(NamedTuple):
    """An evaluation accumulator's values, read back on the host (``unpack``)."""

    loss_sum: float
    n: float
    correct: float
    counts: list[float]  # per confidence bin
    correct_bins: list[float]  # correct predictions per confidence bin
    conf_sum: list[float]  # summed confidence per bin
    labels: list[float]  # per class (empty when labels are not counted)


def unpack(v: list[float]) -> EvalSums:
    """The parts of an accumulator's values, by the layout in this module's docstring."""
    b = CONF_BINS
    return EvalSums(
        v[0],
        v[1],
        v[2],
        v[HEAD : HEAD + b],
        v[HEAD + b : HEAD + 2 * b],
        v[HEAD + 2 * b : HEAD + 3 * b],
        v[HEAD + 3 * b :],
    )


MULTICLASS = "multiclass"
BINARY_LOGITS = "binary-logits"
BINARY_PROBS = "binary-probs"


def task_of(criterion_name: str, logits: Any, target: Any) -> str | None:
    """What kind of classification ``(logits, target)`` is, judged from shapes alone."""
    import torch

    if not isinstance(logits, torch.Tensor) or not isinstance(target, torch.Tensor):
        return None
    if logits.dim() == 0 or target.dim() == 0 or logits.shape[0] != target.shape[0]:
        return None
    if not target.is_floating_point() and not target.is_complex():
        if target.dtype == torch.bool:
            return None
        if logits.dim() == target.dim() + 1 and logits.shape[2:] == target.shape[1:]:
            return MULTICLASS
        return None
    if criterion_name in ("BCEWithLogitsLoss", "BCELoss"):
        one_per_row = logits.dim() == 1 or (logits.dim() == 2 and logits.shape[1] == 1)
        if one_per_row and logits.numel() == target.numel():
            return BINARY_LOGITS if criterion_name == "BCEWithLogitsLoss" else BINARY_PROBS
    return None


def num_classes(task: str | None, logits: Any) -> int:
    if task == MULTICLASS:
        return int(logits.shape[1])
    if task in (BINARY_LOGITS, BINARY_PROBS):
        return 2
    return 0


def label_slots(classes: int) -> int:
    return classes if 0 < classes <= MAX_LABEL_CLASSES else 0


def eval_size(classes: int) -> int:
    return HEAD + 3 * CONF_BINS + label_slots(classes)


def _flat(task: str, logits: Any, target: Any, ignore_index: int) -> tuple[Any, Any, Any, Any]:
    """Per example: confidence, predicted class, whether it counts, and its class."""
    import torch

    if task == MULTICLASS:
        c = logits.shape[1]
        if logits.dim() > 2:
            logits = logits.movedim(1, -1)
        logits = logits.reshape(-1, c)
        tgt = target.reshape(-1)
        confs, preds = [], []
        rows = max(1, CHUNK_ELEMENTS // max(c, 1))
        for start in range(0, logits.shape[0], rows):
            chunk = logits[start : start + rows].float()
            top, pred = chunk.max(dim=1)
            confs.append(torch.exp(top - torch.logsumexp(chunk, dim=1)))
            preds.append(pred)
        conf = torch.cat(confs) if len(confs) != 1 else confs[0]
        pred = torch.cat(preds) if len(preds) != 1 else preds[0]
        valid = (tgt != ignore_index) & (tgt >= 0) & (tgt < c)
        return conf, pred, valid, tgt
    p = logits.reshape(-1).float()
    if task == BINARY_LOGITS:
        p = torch.sigmoid(p)
    t = target.reshape(-1)
    pred = (p > 0.5).long()
    conf = torch.maximum(p, 1 - p)
    valid = (t == 0) | (t == 1)
    return conf, pred, valid, t.round().long()


def eval_update(
    acc: Any,
    loss: Any,
    reduction: str,
    task: str | None,
    logits: Any,
    target: Any,
    classes: int,
    ignore_index: int = DEFAULT_IGNORE_INDEX,
) -> None:
    """Add one evaluation batch to the accumulator ``acc`` (see the module doc)."""
    import torch

    loss = loss.detach().float()
    if task is None:
        n = float(target.shape[0]) if isinstance(target, torch.Tensor) and target.dim() else 1.0
        if loss.dim() != 0:
            n = float(loss.numel())
            loss_sum = loss.sum()
        else:
            loss_sum = loss if reduction == "sum" else loss * n
        if n == 0:
            return
        acc[0] += loss_sum
        acc[1] += n
        return
    if target.numel() == 0:
        return
    conf, pred, valid, tgt = _flat(task, logits.detach(), target.detach(), ignore_index)
    w = valid.float()
    n = w.sum()
    right = (pred == tgt).float() * w
    if loss.dim() != 0:
        loss_sum = (loss.reshape(-1) * w).sum() if loss.numel() == w.numel() else loss.sum()
    elif reduction == "sum":
        loss_sum = loss
    else:  # a mean over the counted examples (ignore_index excluded, as in cross_entropy)
        # an empty batch's mean is NaN: it adds nothing rather than poisoning the pass
        loss_sum = torch.where(n > 0, loss * n, torch.zeros_like(loss))
    acc[:HEAD] += torch.stack([loss_sum, n, right.sum()])
    b = CONF_BINS
    bins = (conf * b).long().clamp_(0, b - 1) + HEAD
    acc.index_add_(0, torch.cat([bins, bins + b, bins + 2 * b]), torch.cat([w, right, conf * w]))
    if label_slots(classes):
        acc.index_add_(0, tgt.clamp(0, classes - 1) + HEAD + 3 * b, w)


def fold_labels(counts: Any, targets: list[Any], task: str, classes: int) -> Any:
    """Add the class indices in ``targets`` to ``counts`` (created on first use)."""
    import torch

    with torch.no_grad():
        try:
            t = torch.cat(targets) if len(targets) > 1 else targets[0]
            t = t.reshape(-1)
        except (RuntimeError, TypeError):  # targets of different ranks or devices
            parts = [x.reshape(-1) for x in targets if isinstance(x, torch.Tensor)]
            if not parts:
                return counts
            if counts is not None:
                parts = [x.to(counts.device, non_blocking=True) for x in parts]
            t = torch.cat(parts)
        return _count(counts, t, task, classes)


def _count(counts: Any, t: Any, task: str, classes: int) -> Any:
    import torch

    if task == MULTICLASS:
        valid = (t >= 0) & (t < classes)
    else:
        valid = (t == 0) | (t == 1)
        t = t.round()
    t = t.long()
    if counts is None:
        counts = torch.zeros(classes, dtype=torch.float32, device=t.device)
    elif counts.device != t.device:
        t, valid = t.to(counts.device), valid.to(counts.device)
    counts.index_add_(0, t.clamp(0, classes - 1), valid.float())
    return counts


class EvalPass:
    """The device-side sums of one evaluation pass (consecutive eval batches of one kind)."""

    def __init__(self, task: str | None, classes: int, device: Any) -> None:
        import torch

        self.task = task
        self.classes = classes
        with torch.inference_mode(False):  # updated in place, in and out of inference mode
            self.acc = torch.zeros(eval_size(classes), dtype=torch.float32, device=device)

    def add(self, loss: Any, logits: Any, target: Any, reduction: str, ignore_index: int) -> None:
        import torch

        with torch.no_grad():
            eval_update(
                self.acc, loss, reduction, self.task, logits, target, self.classes, ignore_index
            )
