"""A Hugging Face ``trainer_state.json``: the ``log_history`` the Trainer keeps.

Each entry of ``log_history`` is one ``on_log`` call at ``step``.  Training
entries have ``loss``, ``learning_rate``, ``grad_norm``; evaluation entries have
``eval_loss`` and ``eval_<metric>``.  They become ``train/loss``, ``lr/0``,
``grad_norm/total``, ``val/loss`` and ``val/<metric>`` (``eval_accuracy`` is
``val/accuracy``).  The closing summary entry (with ``train_runtime``; its
``train_loss`` is the mean over the whole run) and throughput numbers are left out.
"""

from __future__ import annotations

from pathlib import Path

from ..protocol import KEYS, PREFIXES
from ._model import BadImport, ImportedRun, is_noise

HF_KEYS = {
    "loss": KEYS.TRAIN_LOSS,
    "learning_rate": KEYS.LR_FIRST,
    "grad_norm": KEYS.GRAD_NORM_TOTAL,
    "eval_loss": KEYS.VAL_LOSS,
    "eval_accuracy": KEYS.VAL_ACCURACY,
}
CONFIG_KEYS = (
    "train_batch_size",
    "num_train_epochs",
    "max_steps",
    "logging_steps",
    "eval_steps",
    "save_steps",
    "best_metric",
    "best_model_checkpoint",
)


def hf_key(name: str) -> str:
    if name in HF_KEYS:
        return HF_KEYS[name]
    if name.startswith("eval_"):
        return PREFIXES.VAL + name[len("eval_") :]
    return name


def read_trainer_state(doc: dict, path: Path, name: str) -> ImportedRun:
    history = doc.get("log_history")
    if not isinstance(history, list):
        raise BadImport(f"{path}: no log_history list: not a Hugging Face trainer_state.json")
    run = ImportedRun(name=name, source=str(path), format="hf")
    run.config = {k: doc[k] for k in CONFIG_KEYS if doc.get(k) is not None}
    if isinstance(doc.get("train_batch_size"), int):
        run.config["fitscope"] = {"batch_size": doc["train_batch_size"]}
    for i, entry in enumerate(history):
        if not isinstance(entry, dict) or "train_runtime" in entry:
            continue
        step = entry.get("step")
        if not isinstance(step, int) or isinstance(step, bool) or step < 0:
            raise BadImport(f"{path}: log_history[{i}] has no valid step")
        for k, v in entry.items():
            if k == "step" or is_noise(k) or isinstance(v, bool):
                continue
            if isinstance(v, (int, float)):
                run.add(hf_key(k), step, float(v))
    return run
