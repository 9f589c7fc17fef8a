"""The loops people actually write, with only the two lines added (plus, where said, the one
line naming a split): what arrives at the real server app is compared, point by point, with
what the loop itself computed.

* a functional ``nll_loss`` on log-probabilities, with a ``reduction="sum"`` test pass
  (pytorch/examples mnist);
* a GPT-style model returning ``(logits, loss)`` from ``forward``, accumulation that divides
  the loss, the learning rate written into ``param_group["lr"]``, clipping, and a train-split
  then val-split evaluation (nanoGPT);
* an LSTM language model with manual SGD and no optimizer, ending with a val pass then a
  test pass (pytorch/examples word_language_model).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fitscope import _patches
from tests.support.hook import close


def _assert_series(server, run_id: str, key: str, steps: list[int], values: list[float]) -> None:  # noqa: ANN001
    got_steps, got = server.series(run_id, key)
    assert got_steps == steps, key
    assert all(close(a, b, rel=1e-4) for a, b in zip(got, values, strict=True)), (key, got, values)


def _no_patch_left() -> None:
    assert not _patches._active and not _patches._restore
    assert not hasattr(F.nll_loss, "__fitscope_wrapper__")
    assert not hasattr(F.cross_entropy, "__fitscope_wrapper__")
    assert not hasattr(torch.Tensor.backward, "__fitscope_wrapper__")


# -- mnist: F.nll_loss on log_softmax, test pass with reduction="sum" -----------------------------
class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(12, 16)
        self.fc2 = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.fc2(F.relu(self.fc1(x))), dim=1)


def _digits(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 12, generator=g)
    return x, (x[:, :4].argmax(1))


@pytest.mark.parametrize("criterion", [None, F.nll_loss])
def test_functional_nll_loss_with_a_sum_reduced_test_pass(app_server, criterion):
    torch.manual_seed(0)
    model = Net()
    opt = torch.optim.Adadelta(model.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
    xt, yt = _digits(96, 1)
    xs, ys = _digits(50, 2)
    run = app_server.watch(model, opt, criterion)  # the two lines (import + this)
    losses, tests = [], []
    for _epoch in range(2):
        model.train()
        for i in range(0, 96, 16):
            opt.zero_grad()
            output = model(xt[i : i + 16])
            loss = F.nll_loss(output, yt[i : i + 16])
            loss.backward()
            opt.step()
            losses.append(loss.item())
        model.eval()
        test_loss, correct = 0.0, 0
        with torch.no_grad():
            for j in range(0, 50, 20):  # batches of 20, 20, 10
                output = model(xs[j : j + 20])
                test_loss += F.nll_loss(output, ys[j : j + 20], reduction="sum").item()
                correct += output.argmax(dim=1).eq(ys[j : j + 20]).sum().item()
        tests.append((test_loss / 50, correct / 50))
        sched.step()
    run.finish()
    _no_patch_left()
    _assert_series(app_server, run.id, "train/loss", list(range(1, 13)), losses)
    _assert_series(app_server, run.id, "val/loss", [6, 12], [t[0] for t in tests])
    _assert_series(app_server, run.id, "val/accuracy", [6, 12], [t[1] for t in tests])
    hist = app_server.histograms(run.id, "val/confidence")
    assert [sum(h["counts"]) for h in hist] == [50, 50]
    labels = app_server.histograms(run.id, "val/labels")
    assert labels[0]["counts"] == torch.bincount(ys, minlength=4).tolist()
    train_labels = app_server.histograms(run.id, "train/labels")
    assert sum(sum(h["counts"]) for h in train_labels) == 2 * 96
    fs = app_server.config(run.id)["fitscope"]
    assert (fs["num_classes"], fs["batch_size"], fs["grad_accumulation"]) == (4, 16, 1)
    _, lrs = app_server.series(run.id, "lr/0")
    assert lrs[0] == 1.0 and close(lrs[-1], 0.7)


# -- nanoGPT: forward returns (logits, loss); accumulation; lr in param_group; clipping --------
class TinyGPT(nn.Module):
    def __init__(self, vocab: int = 11, block: int = 8, dim: int = 16) -> None:
        super().__init__()
        self.wte = nn.Embedding(vocab, dim)
        self.wpe = nn.Embedding(block, dim)
        self.h = nn.TransformerEncoderLayer(dim, 2, 32, dropout=0.0, batch_first=True)
        self.lm_head = nn.Linear(dim, vocab, bias=False)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):  # noqa: ANN201
        pos = torch.arange(idx.shape[1])
        x = self.h(self.wte(idx) + self.wpe(pos))
        if targets is not None:
            logits = self.lm_head(x)
            loss = F.cross_entropy(
                logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1
            )
        else:
            logits, loss = self.lm_head(x[:, [-1], :]), None
        return logits, loss


def _lm_data(seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 11, (400,), generator=g)


@pytest.mark.parametrize("named", [False, True])
def test_gpt_style_model_returning_its_loss(app_server, named):
    """nanoGPT's ``estimate_loss``: train then val split under one ``model.eval()``; without
    ``run.split`` the split is read from the loop's own ``split`` variable."""
    torch.manual_seed(0)
    train_data, val_data = _lm_data(1), _lm_data(2)
    g = torch.Generator().manual_seed(3)

    def get_batch(split: str) -> tuple[torch.Tensor, torch.Tensor]:
        data = train_data if split == "train" else val_data
        ix = torch.randint(len(data) - 9, (4,), generator=g)
        return (
            torch.stack([data[i : i + 8] for i in ix]),
            torch.stack([data[i + 1 : i + 9] for i in ix]),
        )

    model = TinyGPT()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95))
    accum, eval_every, iters = 2, 5, 10

    @torch.no_grad()
    def estimate_loss() -> dict[str, float]:
        out = {}
        model.eval()
        for split in ["train", "val"]:
            if named:
                run.split(split)  # the one line naming a split: both run under one model.eval()
            losses = torch.zeros(3)
            for k in range(3):
                X, Y = get_batch(split)
                _, loss = model(X, Y)
                losses[k] = loss.item()
            out[split] = float(losses.mean())
        model.train()
        return out

    run = app_server.watch(model, opt)
    train_losses, lrs, norms, evals = [], [], [], {}
    X, Y = get_batch("train")
    for it in range(iters + 1):
        lr = 1e-3 * min(1.0, (it + 1) / 4)
        for group in opt.param_groups:
            group["lr"] = lr
        if it % eval_every == 0:
            evals[it] = estimate_loss()
        if it == iters:
            break
        micro = []
        for _ in range(accum):
            _, loss = model(X, Y)
            micro.append(loss.item())
            loss = loss / accum
            X, Y = get_batch("train")
            loss.backward()
        norms.append(float(nn.utils.clip_grad_norm_(model.parameters(), 1.0)))
        opt.step()
        opt.zero_grad(set_to_none=True)
        train_losses.append(sum(micro) / accum)
        lrs.append(lr)
    run.finish()
    _no_patch_left()
    steps = list(range(1, iters + 1))
    _assert_series(app_server, run.id, "train/loss", steps, train_losses)
    _assert_series(app_server, run.id, "lr/0", steps, lrs)
    _assert_series(app_server, run.id, "grad_norm/total", steps, norms)
    # the evaluations at it = 0, 5, 10 ran after 0, 5, 10 optimizer steps
    at = [0, 5, 10]
    _assert_series(app_server, run.id, "train_eval/loss", at, [evals[i]["train"] for i in at])
    _assert_series(app_server, run.id, "val/loss", at, [evals[i]["val"] for i in at])
    fs = app_server.config(run.id)["fitscope"]
    # sequences, not tokens: 4 sequences x 2 micro-batches
    assert (fs["batch_size"], fs["micro_batch_size"], fs["grad_accumulation"]) == (8, 4, 2)
    assert fs["num_classes"] == 11 and fs["grad_clip"] == 1.0
    ratio_steps, _ = app_server.series(run.id, "update_ratio/total")
    assert ratio_steps == list(range(1, 11))


def test_back_to_back_passes_without_a_name_are_never_averaged(app_server):
    """Two passes at one step, each opened by model.eval(): ``val/`` then ``eval2/``."""
    torch.manual_seed(0)
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    xt, yt = _digits(32, 1)
    xv, yv = _digits(20, 2)
    xs, ys = _digits(30, 3)
    run = app_server.watch(model, opt)
    opt.zero_grad()
    F.nll_loss(model(xt), yt).backward()
    opt.step()
    means = []
    for xe, ye in ((xv, yv), (xs, ys)):
        model.eval()
        with torch.no_grad():
            means.append(F.nll_loss(model(xe), ye).item())
    run.finish()
    _assert_series(app_server, run.id, "val/loss", [1], [means[0]])
    _assert_series(app_server, run.id, "eval2/loss", [1], [means[1]])


# -- word_language_model: LSTM, manual SGD, no optimizer; val pass then test pass ---------------
class RNNModel(nn.Module):
    def __init__(self, ntoken: int = 13, ninp: int = 8, nhid: int = 12) -> None:
        super().__init__()
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = nn.LSTM(ninp, nhid, 1)  # sequence-first
        self.decoder = nn.Linear(nhid, ntoken)
        self.ntoken = ntoken

    def forward(self, input: torch.Tensor, hidden):  # noqa: ANN001, ANN201, A002
        output, hidden = self.rnn(self.encoder(input), hidden)
        decoded = self.decoder(output).view(-1, self.ntoken)
        return F.log_softmax(decoded, dim=1), hidden

    def init_hidden(self, bsz: int):  # noqa: ANN201
        return (torch.zeros(1, bsz, 12), torch.zeros(1, bsz, 12))


def _batchify(data: torch.Tensor, bsz: int) -> torch.Tensor:
    nbatch = data.size(0) // bsz
    return data[: nbatch * bsz].view(bsz, -1).t().contiguous()


def _get_batch(source: torch.Tensor, i: int, bptt: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    seq_len = min(bptt, len(source) - 1 - i)
    return source[i : i + seq_len], source[i + 1 : i + 1 + seq_len].reshape(-1)


def _repackage(h):  # noqa: ANN001, ANN202
    return tuple(v.detach() for v in h)


@pytest.mark.parametrize("named", [False, True])
def test_lstm_language_model_with_manual_sgd_and_no_optimizer(app_server, named):
    torch.manual_seed(0)
    bsz = 4
    train_data = _batchify(_lm_data(1)[:240], bsz)  # 60 x 4: 12 batches of 5 steps
    val_data = _batchify(_lm_data(2)[:80], 2)
    test_data = _batchify(_lm_data(3)[:60], 2)
    model = RNNModel()
    criterion = nn.NLLLoss()  # a module, but not passed to watch: seen as F.nll_loss
    lr, clip = 2.0, 0.25

    def evaluate(source: torch.Tensor) -> float:
        model.eval()
        total = 0.0
        hidden = model.init_hidden(2)
        with torch.no_grad():
            for i in range(0, source.size(0) - 1, 5):
                data, targets = _get_batch(source, i)
                output, hidden = model(data, hidden)
                hidden = _repackage(hidden)
                total += len(data) * criterion(output, targets).item()
        return total / (len(source) - 1)

    run = app_server.watch(model)  # no optimizer, no criterion
    losses, norms, ratios, vals = [], [], {}, []
    step = 0
    for _epoch in range(2):
        model.train()
        hidden = model.init_hidden(bsz)
        for i in range(0, train_data.size(0) - 1, 5):
            data, targets = _get_batch(train_data, i)
            model.zero_grad()
            hidden = _repackage(hidden)
            output, hidden = model(data, hidden)
            loss = criterion(output, targets)
            loss.backward()
            norms.append(float(nn.utils.clip_grad_norm_(model.parameters(), clip)))
            before = [p.detach().clone() for p in model.parameters()]
            for p in model.parameters():
                p.data.add_(p.grad, alpha=-lr)
            step += 1
            dw = math.sqrt(
                sum(
                    float((p.detach() - b).norm()) ** 2
                    for p, b in zip(model.parameters(), before, strict=True)
                )
            )
            ratios[step] = dw / math.sqrt(sum(float(b.norm()) ** 2 for b in before))
            losses.append(loss.item())
        vals.append(evaluate(val_data))
    if named:
        run.split("test")
    test_loss = evaluate(test_data)
    run.finish()
    _no_patch_left()
    n = len(losses)
    assert n == 24
    _assert_series(app_server, run.id, "train/loss", list(range(1, n + 1)), losses)
    # norms before clipping, with no optimizer to hook: each backward() is a step
    _assert_series(app_server, run.id, "grad_norm/total", list(range(1, n + 1)), norms)
    at = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20]
    _assert_series(app_server, run.id, "update_ratio/total", at, [ratios[s] for s in at])
    counts = app_server.counts(run.id)
    assert counts["update_ratio/rnn"] == len(at) and counts["update_ratio/decoder"] == len(at)
    _assert_series(app_server, run.id, "val/loss", [12, 24], vals)
    _assert_series(app_server, run.id, "test/loss" if named else "eval2/loss", [24], [test_loss])
    assert ("eval2/loss" in counts) is not named
    fs = app_server.config(run.id)["fitscope"]
    # 4 sequences, not 20 tokens; a 13-token vocabulary
    assert (fs["batch_size"], fs["num_classes"], fs["grad_clip"]) == (4, 13, 0.25)
    assert "lr/0" not in counts


def test_a_custom_loss_is_taken_from_backward_unscaled_under_accumulation(app_server):
    """No functional loss, no criterion: the tensor backward() is called on, summed over the
    micro-batches of a step (the loop divided each by the accumulation factor)."""
    torch.manual_seed(0)
    model = nn.Linear(6, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(64, 6, generator=g), torch.randn(64, 1, generator=g)
    run = app_server.watch(model, opt)
    expected = []
    for i in range(0, 64, 16):
        micro = []
        for j in (i, i + 8):
            loss = ((model(x[j : j + 8]) - y[j : j + 8]) ** 2).mean()  # no F call
            micro.append(loss.item())
            (loss / 2).backward()
        opt.step()
        opt.zero_grad()
        expected.append(sum(micro) / 2)
    run.finish()
    _assert_series(app_server, run.id, "train/loss", [1, 2, 3, 4], expected)
    fs = app_server.config(run.id)["fitscope"]
    assert (fs["batch_size"], fs["grad_accumulation"]) == (16, 2)


def test_nothing_captured_is_said_once(app_server, capfd):
    from fitscope._watch import NO_LOSS_AFTER
    from fitscope.protocol import KEYS

    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = app_server.watch(model, opt)
    x = torch.randn(8, 4)
    for _ in range(NO_LOSS_AFTER + 5):
        opt.zero_grad()
        torch.autograd.backward(model(x).pow(2).sum())  # not Tensor.backward: nothing seen
        opt.step()
    run.finish()
    err = capfd.readouterr().err
    assert err.count("no training loss captured") == 1
    assert app_server.series(run.id, KEYS.NO_LOSS_CAPTURED) == ([NO_LOSS_AFTER], [1.0])
    assert "train/loss" not in app_server.counts(run.id)
    alerts = app_server.api(f"/api/v1/runs/{run.id}/alerts")
    [alert] = [a for a in alerts if a["rule"] == "no_loss_captured"]
    assert alert["severity"] == "info" and "run.log" in alert["remedy"]


def test_grad_scaler_and_a_custom_loss_are_recorded_unscaled(app_server):
    """``scaler.scale(loss / 2).backward()`` on a loss no hook computed: the recorded loss is
    the loop's own, neither scaled by the GradScaler nor divided for accumulation."""
    torch.manual_seed(0)
    model = nn.Linear(6, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(64, 6, generator=g), torch.randint(0, 3, (64,), generator=g)
    run = app_server.watch(model, opt)
    expected = []
    for i in range(0, 64, 16):
        micro = []
        for j in (i, i + 8):
            out = model(x[j : j + 8])
            loss = (out.logsumexp(1) - out.gather(1, y[j : j + 8, None])[:, 0]).mean()
            micro.append(loss.item())
            scaler.scale(loss / 2).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad()
        expected.append(sum(micro) / 2)
    run.finish()
    _assert_series(app_server, run.id, "train/loss", [1, 2, 3, 4], expected)


def test_update_ratio_of_a_large_matrix_is_taken_on_every_8th_row(app_server):
    from fitscope._updates import ROW_STRIDE

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 128), nn.ReLU(), nn.Linear(128, 3))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    x, y = _digits(32, 1)[0][:, :10], _digits(32, 1)[1].clamp(max=2)
    run = app_server.watch(model, opt)
    sampled, full = [], []
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        rows = [
            p.detach()[::ROW_STRIDE] if p.shape[0] >= 64 and p.dim() > 1 else p.detach()
            for p in model[0].parameters()
        ]
        before = [r.clone() for r in rows]
        whole = [p.detach().clone() for p in model[0].parameters()]
        opt.step()
        after = [
            p.detach()[::ROW_STRIDE] if p.shape[0] >= 64 and p.dim() > 1 else p.detach()
            for p in model[0].parameters()
        ]

        def ratio(new, old):  # noqa: ANN001, ANN202
            dw = sum(float((a - b).norm()) ** 2 for a, b in zip(new, old, strict=True))
            return math.sqrt(dw / sum(float(b.norm()) ** 2 for b in old))

        sampled.append(ratio(after, before))
        full.append(ratio([p.detach() for p in model[0].parameters()], whole))
    run.finish()
    _assert_series(app_server, run.id, "update_ratio/0", [1, 2, 3], sampled)
    for s, f in zip(sampled, full, strict=True):  # the sample estimates the whole layer
        assert 0.7 < s / f < 1.3


@pytest.mark.filterwarnings("ignore:`torch.jit.script.*is deprecated:DeprecationWarning")
def test_torchscript_still_compiles_functional_losses_while_watching(app_server):
    class Loss(nn.Module):
        def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(x, y, label_smoothing=0.1)

    model = nn.Linear(4, 3)
    run = app_server.watch(model, torch.optim.SGD(model.parameters(), lr=0.1))
    assert hasattr(F.cross_entropy, "__fitscope_wrapper__")
    scripted = torch.jit.script(Loss())
    x, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
    with torch.no_grad():
        assert close(float(scripted(model(x), y)), float(Loss()(model(x), y)))
    run.finish()
    _no_patch_left()


def test_a_compiled_model_computing_its_loss_in_forward(app_server):
    """torch.compile traces through the functional wrapper without recording anything inside
    the graph; the loss is then taken where backward() is called on it."""
    torch.manual_seed(0)
    model = TinyGPT()
    compiled = torch.compile(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    data = _lm_data(1)
    run = app_server.watch(compiled, opt)
    losses = []
    for i in range(3):
        x, y = data[i * 8 : i * 8 + 32].view(4, 8), data[i * 8 + 1 : i * 8 + 33].view(4, 8)
        opt.zero_grad()
        _, loss = compiled(x, y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    run.finish()
    _no_patch_left()
    _assert_series(app_server, run.id, "train/loss", [1, 2, 3], losses)
    assert app_server.counts(run.id)["grad_norm/total"] == 3


def test_the_split_is_read_from_the_loops_own_variable_only_when_it_names_one():
    from fitscope._passes import split_in_caller

    def loss_call() -> str | None:  # stands for the patched loss: its caller's caller is looked at
        return inner()

    def inner() -> str | None:
        return split_in_caller()

    def evaluate(phase: str) -> str | None:
        return loss_call()

    assert evaluate("test") == "test"
    assert evaluate("train") == "train_eval"
    assert evaluate("validation") == "val"
    assert evaluate("holdout-42") is None  # not a split name: nothing is guessed


@pytest.mark.parametrize("steps", [10, 12])
def test_update_size_is_read_before_the_next_step_or_at_finish(app_server, steps):
    """The update measured at step s is read just before step s + 1 changes the weights (the
    last one at finish()); no hook of fitscope's stays on the optimizer after its step."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    x, y = _digits(32, 2)[0][:, :10], _digits(32, 2)[1].clamp(max=2)
    run = app_server.watch(model, opt)
    ratios = []
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        before = [p.detach().clone() for p in model.parameters()]
        opt.step()
        assert not opt._optimizer_step_post_hooks
        pairs = zip(model.parameters(), before, strict=True)
        dw = sum(float((p.detach() - b).norm()) ** 2 for p, b in pairs)
        ratios.append(math.sqrt(dw / sum(float(b.norm()) ** 2 for b in before)))
    run.finish()
    _assert_series(app_server, run.id, "update_ratio/total", list(range(1, 11)), ratios[:10])
