"""Small pieces of the hook, table-driven: names, shapes, decoding of recorded rows."""

from __future__ import annotations

import math

import pytest
import torch

from fitscope._decode import Decoder
from fitscope._evalstats import (
    BINARY_LOGITS,
    CONF_BINS,
    MULTICLASS,
    EvalPass,
    fold_labels,
    task_of,
)
from fitscope._facts import is_compiled, layer_name, unwrap_optimizer
from fitscope._recorder import Recorder


@pytest.mark.parametrize(
    "param, layer",
    [
        ("fc1.weight", "fc1"),
        ("bias", "(root)"),
        ("module.encoder.fc1.weight", "encoder.fc1"),
        ("_orig_mod.0.weight", "0"),
        ("module._orig_mod.layers.3.attn.q.weight", "layers.3.attn.q"),
        ("_fsdp_wrapped_module.blocks.0._checkpoint_wrapped_module.mlp.bias", "blocks.0.mlp"),
        ("encoder.module.fc.weight", "encoder.module.fc"),  # a user's own "module" stays
    ],
)
def test_layer_names_drop_wrapper_prefixes(param, layer):
    assert layer_name(param) == layer


@pytest.mark.parametrize(
    "crit, logits, target, task",
    [
        ("CrossEntropyLoss", torch.zeros(4, 3), torch.zeros(4, dtype=torch.long), MULTICLASS),
        ("CrossEntropyLoss", torch.zeros(4, 3, 5), torch.zeros(4, 5, dtype=torch.long), MULTICLASS),
        ("NLLLoss", torch.zeros(4, 3), torch.zeros(4, dtype=torch.int32), MULTICLASS),
        ("CrossEntropyLoss", torch.zeros(4, 3), torch.zeros(4, 3), None),  # soft targets
        ("CrossEntropyLoss", torch.zeros(4, 3), torch.zeros(5, dtype=torch.long), None),
        ("BCEWithLogitsLoss", torch.zeros(4, 1), torch.zeros(4, 1), BINARY_LOGITS),
        ("BCEWithLogitsLoss", torch.zeros(4, 6), torch.zeros(4, 6), None),  # multi-label
        ("MSELoss", torch.zeros(4, 1), torch.zeros(4, 1), None),
        ("CrossEntropyLoss", torch.zeros(4, 3), None, None),
        ("CrossEntropyLoss", torch.zeros(()), torch.zeros((), dtype=torch.long), None),
        ("CrossEntropyLoss", torch.zeros(4, 2), torch.zeros(4, dtype=torch.bool), None),
    ],
)
def test_task_of_is_judged_from_shapes(crit, logits, target, task):
    assert task_of(crit, logits, target) == task


def test_eval_pass_sums_give_exact_ece():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 4, generator=g) * 3
    target = torch.randint(0, 4, (50,), generator=g)
    target[:5] = -100
    ev = EvalPass(MULTICLASS, 4, "cpu")
    loss = torch.nn.functional.cross_entropy(logits, target)
    for part in (slice(0, 20), slice(20, 50)):
        ev.add(
            torch.nn.functional.cross_entropy(logits[part], target[part]),
            logits[part],
            target[part],
            "mean",
            -100,
        )
    acc = ev.acc.tolist()
    keep = target != -100
    probs = torch.softmax(logits[keep], 1)
    conf, pred = probs.max(1)
    right = (pred == target[keep]).float()
    assert acc[1] == 45 and math.isclose(acc[0] / acc[1], float(loss), rel_tol=1e-5)
    assert acc[2] == float(right.sum())
    b = CONF_BINS
    bins = (conf * b).long().clamp(max=b - 1)
    assert acc[3 : 3 + b] == torch.bincount(bins, minlength=b).float().tolist()
    ece = sum(
        abs(c - s) for c, s in zip(acc[3 + b : 3 + 2 * b], acc[3 + 2 * b : 3 + 3 * b], strict=True)
    )
    exact = sum(abs(float(right[bins == i].sum() - conf[bins == i].sum())) for i in range(b))
    assert math.isclose(ece, exact, rel_tol=1e-4)
    assert acc[3 + 3 * b :] == torch.bincount(target[keep], minlength=4).float().tolist()


def test_fold_labels_counts_valid_classes_only():
    counts = fold_labels(None, [torch.tensor([0, 1, 1, 7, -100]), torch.tensor([2])], MULTICLASS, 3)
    assert counts.tolist() == [1.0, 2.0, 1.0]
    counts = fold_labels(counts, [torch.tensor([[2, 2]])], MULTICLASS, 3)  # another rank
    assert counts.tolist() == [1.0, 2.0, 3.0]


def test_decoder_unscales_fused_amp_norms_and_reads_tensor_lrs():
    rec = Recorder(interval=1e9)
    rec.layers = ["a", "a", "b"]
    rec.hyper(1, [0.1, None], [0.0, 0.01])
    vals = [3.0, 4.0, 12.0, 0.5, 0.7, 1024.0, 0.0, 0.05]
    rec.scalars.extend(torch.tensor(v) for v in vals)
    # step 1: norms of a.weight, a.bias, b (scaled by 1024), two micro-batch losses, extras
    rec.rows.append((1, "step", 3, None, 2, 0, ("grad_scale", "found_inf", 1)))
    rec.scalars.extend([torch.tensor(12.0), torch.tensor(2048.0), torch.tensor(1.0)])
    rec.rows.append((2, "step", 1, [2], 0, 0, ("grad_scale", "found_inf")))
    rec.pack()
    (msg,) = Decoder("r").messages(rec.take())
    s = msg.payload["scalars"]
    assert s["train/loss"] == {"steps": [1], "values": [pytest.approx(0.6)]}
    assert s["grad_norm/a"]["values"] == [pytest.approx(5 / 1024)]
    assert s["grad_norm/b"] == {"steps": [1, 2], "values": [12 / 1024, 12 / 2048]}
    assert s["grad_norm/total"]["values"] == [pytest.approx(13 / 1024), 12 / 2048]
    assert s["train/step_skipped"] == {"steps": [2], "values": [1.0]}
    assert s["lr/0"] == {"steps": [1, 2], "values": [0.1, 0.1]}
    assert s["lr/1"] == {"steps": [1], "values": [pytest.approx(0.05)]}  # a tensor lr, group 1
    assert s["wd/1"]["values"] == [0.01, 0.01]


def test_nonfinite_values_survive_decoding():
    rec = Recorder(interval=1e9)
    rec.layers = ["a"]
    rec.scalars.extend([torch.tensor(float("inf")), torch.tensor(float("nan"))])
    rec.rows.append((1, "skipped", 1, None, 1, 0, ()))
    rec.pack()
    (msg,) = Decoder("r").messages(rec.take())
    s = msg.payload["scalars"]
    assert s["grad_norm/total"]["values"] == ["Infinity"]
    assert s["train/loss"]["values"] == ["NaN"]
    assert s["train/step_skipped"]["values"] == [1.0]


def test_unwrap_and_compiled_detection():
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    class Wrapper:  # like Accelerate's AcceleratedOptimizer
        def __init__(self, optimizer) -> None:  # noqa: ANN001
            self.optimizer = optimizer

    assert unwrap_optimizer(Wrapper(Wrapper(opt))) is opt
    assert unwrap_optimizer(None) is None
    assert not is_compiled(model)
    assert is_compiled(torch.compile(model))  # wrapping only; nothing is compiled until called


def test_update_size_cadence_is_dense_early_and_sparse_late():
    from fitscope._updates import due, next_due

    steps = [s for s in range(0, 2001) if due(s)]
    assert steps[:12] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 30]
    assert [s for s in steps if 100 <= s <= 1000] == list(range(100, 1001, 50))
    assert [s for s in steps if s > 1000] == list(range(1100, 2001, 100))
    for s in range(0, 2000):  # next_due is the first due step after s
        n = next_due(s)
        assert due(n) and not any(due(k) for k in range(s + 1, n)), s
