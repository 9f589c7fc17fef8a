"""Readers of other tools' logs: TensorBoard event files, CSV/JSONL/JSON histories, trainer_state.json."""

from __future__ import annotations

import json
import math
import textwrap

import pytest

from fitscope.importers import BadImport, import_run_id, load, standard_key
from fitscope.importers.tensorboard import crc32c
from fitscope.importers.upload import _batches
from tests.support import tb_events as tb


def test_crc32c_known_answer():
    # the check value of CRC-32C (RFC 3720, appendix B.4)
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0


def test_tensorboard_simple_and_tensor_scalars(tmp_path):
    events = [tb.event(s, [tb.simple_value("train/loss", 1.0 / s)]) for s in range(1, 6)]
    events += [
        tb.event(2, [tb.tensor_value("eval/accuracy", 0.5, with_metadata=True)]),
        tb.event(4, [tb.tensor_value("eval/accuracy", 0.75, with_metadata=False)]),
        tb.event(4, [tb.tensor_value("epoch_time", 12.5, with_metadata=True, double=True)]),
        tb.event(3, [tb.histogram_value("weights"), tb.simple_value("loss/val", math.nan)]),
        tb.event(3, [tb.text_value("notes", "hello")]),
        tb.event(5),  # an event without a summary (e.g. a session log)
    ]
    tb.write(tmp_path / "logs" / "events.out.tfevents.1.host", events)
    [run] = load(tmp_path / "logs")
    assert run.format == "tensorboard" and run.name == "logs"
    assert run.scalars["train/loss"] == {s: pytest.approx(1.0 / s) for s in range(1, 6)}
    assert run.scalars["eval/accuracy"] == {2: 0.5, 4: 0.75}
    assert run.scalars["epoch_time"] == {4: 12.5}
    assert math.isnan(run.scalars["loss/val"][3])
    assert set(run.scalars) == {"train/loss", "eval/accuracy", "epoch_time", "loss/val"}
    assert any("weights" in n and "notes" in n for n in run.notes)
    run.rename({})
    assert set(run.scalars) == {"train/loss", "val/accuracy", "epoch_time", "val/loss"}


def test_tensorboard_folder_of_runs_and_restart(tmp_path):
    # two event files in one folder (a resumed run): the later file wins at shared steps
    tb.write(
        tmp_path / "a" / "events.out.tfevents.1",
        [tb.event(s, [tb.simple_value("loss", 1.0)]) for s in (1, 2, 3)],
    )
    tb.write(
        tmp_path / "a" / "events.out.tfevents.2",
        [tb.event(s, [tb.simple_value("loss", 2.0)]) for s in (3, 4)],
    )
    tb.write(
        tmp_path / "b" / "sub" / "events.out.tfevents.1", [tb.event(7, [tb.simple_value("x", 7.0)])]
    )
    [single] = load(tmp_path / "a" / "events.out.tfevents.2")
    assert single.name == "a" and single.scalars["loss"] == {3: 2.0, 4: 2.0}
    runs = {r.name: r for r in load(tmp_path, name="exp")}
    assert set(runs) == {"exp/a", "exp/b/sub"}
    assert runs["exp/a"].scalars["loss"] == {1: 1.0, 2: 1.0, 3: 2.0, 4: 2.0}
    assert runs["exp/b/sub"].scalars["x"] == {7: 7.0}


def test_tensorboard_truncated_tail_is_ignored_and_damage_is_reported(tmp_path):
    good = [tb.event(s, [tb.simple_value("loss", float(s))]) for s in (1, 2)]
    # a file still being written: its last record is cut short
    partial = tb.record(tb.event(3, [tb.simple_value("loss", 3.0)]))[:-7]
    tb.write(tmp_path / "live" / "events.out.tfevents.1", good, tail=partial)
    [run] = load(tmp_path / "live")
    assert run.scalars["loss"] == {1: 1.0, 2: 2.0}

    path = tb.write(tmp_path / "bad" / "events.out.tfevents.1", good)
    raw = bytearray(path.read_bytes())
    raw[3] ^= 0xFF  # damage the first length header
    path.write_bytes(bytes(raw))
    with pytest.raises(BadImport, match="CRC"):
        load(tmp_path / "bad")


def test_tensorboard_files_written_by_pytorch(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (extra: integrations)")
    import numpy as np
    from torch.utils.tensorboard import SummaryWriter

    w = SummaryWriter(str(tmp_path / "tb"))
    for s in range(1, 31):
        w.add_scalar("Loss/train", 2.0 / s, s)
        if s % 10 == 0:
            w.add_scalar("Loss/val", 3.0 / s, s)
            w.add_histogram("fc.weight", np.linspace(-1, 1, 50), s)
    w.add_scalar("acc", 0.25, 31, new_style=True)
    w.close()
    [run] = load(tmp_path / "tb")
    run.rename({})
    assert run.scalars["train/loss"] == {s: pytest.approx(2.0 / s) for s in range(1, 31)}
    assert run.scalars["val/loss"] == {s: pytest.approx(3.0 / s) for s in (10, 20, 30)}
    assert run.scalars["acc"] == {31: 0.25}
    assert "fc.weight" not in run.scalars


LIGHTNING_CSV = textwrap.dedent("""\
    epoch,step,train_loss,val_loss,val_acc,note
    0,9,1.25,,,a
    0,19,1.0,,,b
    0,19,,1.5,0.4,c
    1,29,nan,,,d
    1,39,0.75,inf,0.5,e
""")


def test_csv_wide_like_lightning_csvlogger(tmp_path):
    p = tmp_path / "metrics.csv"
    p.write_text(LIGHTNING_CSV)
    [run] = load(p)
    assert run.format == "csv" and run.name == "metrics"
    assert "note" not in run.scalars and any("note" in n for n in run.notes)
    run.rename({"epoch": "train/epoch"})
    assert run.scalars["train/loss"][9] == 1.25 and math.isnan(run.scalars["train/loss"][29])
    assert run.scalars["val/loss"][19] == 1.5 and run.scalars["val/loss"][39] == math.inf
    assert run.scalars["val/accuracy"] == {19: 0.4, 39: 0.5}
    assert run.scalars["train/epoch"] == {9: 0, 19: 0, 29: 1, 39: 1}


def test_csv_without_step_column_numbers_rows(tmp_path):
    p = tmp_path / "h.tsv"
    p.write_text("loss\tlr\n0.5\t0.1\n0.4\t0.1\n")
    [run] = load(p)
    run.rename({})
    assert run.scalars == {"train/loss": {1: 0.5, 2: 0.4}, "lr/0": {1: 0.1, 2: 0.1}}
    assert any("no step column" in n for n in run.notes)


def test_csv_bad_step_is_an_error(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text("step,loss\n1,0.5\n-2,0.4\n")
    with pytest.raises(BadImport, match="row 2"):
        load(p)


def test_jsonl_wide_nested_and_long(tmp_path):
    wide = tmp_path / "w.jsonl"
    wide.write_text(
        '{"step": 1, "train": {"loss": 2.0}, "lr": 0.1}\n'
        '\n{"global_step": 2, "train": {"loss": "NaN"}, "time": 12.0}\n'
    )
    [run] = load(wide)
    # the step column is chosen from the first row; later rows without it are numbered
    run.rename({})
    assert run.scalars["train/loss"][1] == 2.0 and math.isnan(run.scalars["train/loss"][2])
    assert run.scalars["lr/0"] == {1: 0.1}
    assert "time" not in run.scalars

    long = tmp_path / "export.jsonl"
    rows = [
        {"key": "train/loss", "step": 1, "value": 1.0},
        {"key": "train/loss", "step": 2, "value": "-Infinity"},
        {
            "key": "val/confidence",
            "step": 2,
            "edges": [0, 0.5, 1],
            "counts": [3, 4],
            "correct": [1, 4],
        },
    ]
    long.write_text("".join(json.dumps(r) + "\n" for r in rows))
    [run] = load(long)
    assert run.scalars == {"train/loss": {1: 1.0, 2: -math.inf}}
    assert run.histograms == [
        {
            "key": "val/confidence",
            "step": 2,
            "edges": [0, 0.5, 1],
            "counts": [3, 4],
            "correct": [1, 4],
        }
    ]


def test_json_list_of_rows(tmp_path):
    p = tmp_path / "history.json"
    p.write_text(json.dumps([{"step": 5, "val_loss": 0.3}, {"step": 10, "val_loss": 0.2}]))
    [run] = load(p)
    run.rename({})
    assert run.scalars == {"val/loss": {5: 0.3, 10: 0.2}}
    p.write_text(json.dumps({"not": "rows"}))
    with pytest.raises(BadImport, match="list of objects"):
        load(p)


TRAINER_STATE = {
    "best_metric": None,
    "epoch": 2.0,
    "global_step": 20,
    "max_steps": 20,
    "logging_steps": 5,
    "num_train_epochs": 2,
    "train_batch_size": 8,
    "log_history": [
        {"epoch": 0.5, "grad_norm": 3.5, "learning_rate": 4e-5, "loss": 2.25, "step": 5},
        {"epoch": 1.0, "grad_norm": 2.5, "learning_rate": 3e-5, "loss": 1.5, "step": 10},
        {
            "epoch": 1.0,
            "eval_accuracy": 0.625,
            "eval_loss": 1.75,
            "eval_f1": 0.5,
            "eval_runtime": 0.2,
            "eval_samples_per_second": 300.0,
            "eval_steps_per_second": 10.0,
            "step": 10,
        },
        {"epoch": 1.5, "grad_norm": 2.0, "learning_rate": 2e-5, "loss": float("nan"), "step": 15},
        {
            "epoch": 2.0,
            "step": 20,
            "total_flos": 1234.0,
            "train_loss": 1.9,
            "train_runtime": 3.0,
            "train_samples_per_second": 50.0,
            "train_steps_per_second": 6.0,
        },
    ],
}


def test_hf_trainer_state(tmp_path):
    ckpt = tmp_path / "checkpoint-20"
    ckpt.mkdir()
    (ckpt / "trainer_state.json").write_text(json.dumps(TRAINER_STATE))  # NaN as Python writes it
    [run] = load(ckpt)  # the checkpoint folder is enough
    assert run.format == "hf" and run.name == "checkpoint-20"
    s = run.scalars
    assert (
        s["train/loss"][5] == 2.25
        and s["train/loss"][10] == 1.5
        and math.isnan(s["train/loss"][15])
    )
    assert 20 not in s["train/loss"]  # the summary's train_loss is a whole-run mean, not a point
    assert s["val/loss"] == {10: 1.75}
    assert s["val/accuracy"] == {10: 0.625}
    assert s["val/f1"] == {10: 0.5}
    assert s["lr/0"] == {5: 4e-5, 10: 3e-5, 15: 2e-5}
    assert s["grad_norm/total"] == {5: 3.5, 10: 2.5, 15: 2.0}
    assert s["epoch"] == {5: 0.5, 10: 1.0, 15: 1.5}
    assert not any("runtime" in k or "per_second" in k or "flos" in k for k in s)
    assert run.config["train_batch_size"] == 8 and run.config["fitscope"] == {"batch_size": 8}
    run.rename({})
    assert set(run.scalars) == set(s)  # already standard: renaming changes nothing


def test_standard_keys():
    assert standard_key("Val_Loss") == "val/loss"
    assert standard_key("eval/accuracy") == "val/accuracy"
    assert standard_key("learning_rate") == "lr/0"
    assert standard_key("my/custom") == "my/custom"


def test_unknown_inputs_are_clear_errors(tmp_path):
    with pytest.raises(BadImport, match="no such file"):
        load(tmp_path / "missing.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadImport, match="no TensorBoard event files"):
        load(tmp_path / "empty")
    with pytest.raises(BadImport, match="unknown format"):
        load(tmp_path, fmt="parquet")


def test_batches_go_in_step_order_and_ids_are_stable(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text("step,a,b\n" + "".join(f"{s},{s},{-s}\n" for s in range(1, 11)))
    [run] = load(p)
    run.histograms.append({"key": "h", "step": 3, "edges": [0, 1], "counts": [1]})
    batches = _batches(run, size=6)
    assert [n for _, _, n in batches] == [7, 6, 6, 2]
    seen = []
    for scalars, hists, _ in batches:
        steps = sorted({st for s in scalars.values() for st in s["steps"]})
        seen.append((steps[0], steps[-1], [h["step"] for h in hists]))
    # step ranges follow each other, and the histogram travels with its step
    assert seen == [(1, 3, [3]), (4, 6, []), (7, 9, []), (10, 10, [])]
    [again] = load(p)
    again.histograms = list(run.histograms)
    assert import_run_id(run, "p") == import_run_id(again, "p") != import_run_id(run, "q")
