"""Labelled runs for the diagnosis benchmark: tiny real PyTorch trainings with injected faults.

Each run trains a small model (MLP, CNN, LSTM classifier or a one-layer transformer language
model) on generated data for a few hundred steps and records what the hook records, under the
same keys: ``train/loss``, ``grad_norm/total`` and ``grad_norm/<module>`` (before clipping),
``lr/0``, ``param_norm/<module>`` every 50 steps, ``update_ratio/total`` and
``update_ratio/<module>`` (||dw|| / ||w|| over one step, at the hook's steps: ``fitscope._updates.due``),
``val/loss``, ``val/accuracy``, the ``val/confidence`` histogram and the ``train/labels`` /
``val/labels`` counts at each evaluation, plus the ``config["fitscope"]`` facts. A fault is
injected into the loop (learning rate, loss scale, loop order, data, initialisation); its
ground truth (the rules that must fire, the root cause, the step it starts) is fixed here,
before any threshold was tuned on the results.

Runs are cached as JSON under ``tmp/diag_bench/`` (keyed by the spec), so only the first
benchmark run trains.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fitscope._updates import due as update_due
from fitscope.protocol import KEYS, PREFIXES

CACHE = Path(os.environ.get("FITSCOPE_DIAG_BENCH_CACHE", "tmp/diag_bench"))
VERSION = 5  # bump when the generation changes (invalidates the cache)
BINS = 15
ARCHS = ("mlp", "cnn", "lstm", "lm")


@dataclass(frozen=True)
class Spec:
    arch: str
    fault: str  # "healthy" or a fault name
    seed: int
    variant: str = (
        ""  # healthy variants: warmup_cosine_clip, frozen_backbone, smoothing_bn, per_epoch
    )

    @property
    def id(self) -> str:
        v = f"-{self.variant}" if self.variant else ""
        return f"{self.fault}{v}-{self.arch}-s{self.seed}"


@dataclass
class Truth:
    expected: tuple[str, ...] = ()  # rules that must fire
    root: tuple[str, ...] = ()  # acceptable root causes of the first warning/critical alert
    allowed: tuple[str, ...] = ()  # consequences that may also fire
    onset: int = 1  # step the fault starts (or "val_min" for overfitting)
    onset_kind: str = "step"  # "step" or "val_min" (delay counted in evaluations)
    delays: dict[str, int] = field(default_factory=dict)  # rule -> step the delay is counted from
    stays_open: tuple[str, ...] = ()  # rules whose alert must still be open at the end


# consequences a collapsed / blown-up model may show besides its root cause
COLLAPSE = (
    "divergence",
    "dead_units",
    "not_learning",
    "vanishing_gradients",
    "no_update",
    "underfitting",
    "exploding_gradients",
    "non_finite",
    "plateau",
    "early_stop",
    "underconfidence",
    "overconfidence",
    "update_size",
    "grad_clipping",
)


# -- data ------------------------------------------------------------------------------------
def _data(
    arch: str, seed: int, n: int, k: int, shift: bool = False, train: bool = True, noise: float = 0
):
    g = torch.Generator().manual_seed(1234)  # class structure: fixed across seeds
    s = torch.Generator().manual_seed(seed * 7919 + (0 if train else 1))
    probs = torch.full((k,), 1.0 / k)
    if shift:
        probs = torch.tensor([0.7] + [0.3 / (k - 1)] * (k - 1))
    y = torch.multinomial(probs, n, replacement=True, generator=s)
    if arch == "mlp":
        centers = torch.randn(k, 16, generator=g) * 0.9
        x = centers[y] + torch.randn(n, 16, generator=s)
    elif arch == "cnn":
        tmpl = torch.randn(k, 1, 8, 8, generator=g) * 0.7
        x = tmpl[y] + torch.randn(n, 1, 8, 8, generator=s)
    else:  # lstm: sequences of 10 steps x 4 features
        tmpl = torch.randn(k, 10, 4, generator=g) * 0.5
        x = tmpl[y] + torch.randn(n, 10, 4, generator=s)
    if noise:  # labels flipped to a random class (memorised by a large model: overfitting)
        flip = torch.rand(n, generator=s) < noise
        y = torch.where(flip, torch.randint(k, (n,), generator=s), y)
    return x, y


VOCAB = 24
SEQ = 16


def _lm_stream(seed: int, n_tokens: int) -> torch.Tensor:
    """A first-order Markov chain over VOCAB tokens, 3 likely successors each (fixed chain)."""
    g = torch.Generator().manual_seed(99)
    trans = torch.full((VOCAB, VOCAB), 0.02)
    for a in range(VOCAB):
        nxt = torch.randperm(VOCAB, generator=g)[:3]
        trans[a, nxt] += torch.tensor([3.0, 2.0, 1.0])
    trans = trans / trans.sum(1, keepdim=True)
    s = torch.Generator().manual_seed(seed * 31 + 5)
    out = torch.empty(n_tokens, dtype=torch.long)
    cur = 0
    for i in range(n_tokens):
        cur = int(torch.multinomial(trans[cur], 1, generator=s))
        out[i] = cur
    return out


# -- models ----------------------------------------------------------------------------------
class LSTMNet(nn.Module):
    def __init__(self, k: int) -> None:
        super().__init__()
        self.rnn = nn.LSTM(4, 24, batch_first=True)
        self.fc = nn.Linear(24, 24)
        self.act = nn.ReLU()
        self.out = nn.Linear(24, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.rnn(x)
        return self.out(self.act(self.fc(h[:, -1])))


class TinyLM(nn.Module):
    mask: torch.Tensor  # a buffer

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(VOCAB, 32)
        self.pos = nn.Embedding(SEQ, 32)
        self.block = nn.TransformerEncoderLayer(32, 2, 64, dropout=0.0, batch_first=True)
        self.head = nn.Linear(32, VOCAB)
        self.register_buffer("mask", torch.triu(torch.full((SEQ, SEQ), -math.inf), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.emb(x) + self.pos.weight[: x.shape[1]]
        h = self.block(h, src_mask=self.mask[: x.shape[1], : x.shape[1]])
        return self.head(h)


def _model(arch: str, k: int, bn: bool = False, depth_extra: bool = False) -> nn.Module:
    if arch == "mlp":
        layers: list[nn.Module] = [nn.Linear(16, 64)]
        if bn:
            layers.append(nn.BatchNorm1d(64))
        layers += [nn.ReLU(), nn.Linear(64, 64)]
        if bn:
            layers.append(nn.BatchNorm1d(64))
        layers += [nn.ReLU(), nn.Linear(64, k)]
        return nn.Sequential(*layers)
    if arch == "cnn":
        layers = [nn.Conv2d(1, 8, 3)]
        if bn:
            layers.append(nn.BatchNorm2d(8))
        layers += [nn.ReLU(), nn.Conv2d(8, 8, 3)]
        if bn:
            layers.append(nn.BatchNorm2d(8))
        layers += [nn.ReLU(), nn.Flatten(), nn.Linear(128, k)]
        return nn.Sequential(*layers)
    if arch == "lstm":
        return LSTMNet(k)
    return TinyLM()


def _modules(model: nn.Module) -> dict[str, list[nn.Parameter]]:
    out: dict[str, list[nn.Parameter]] = {}
    for name, mod in model.named_modules():
        ps = [p for p in mod.parameters(recurse=False) if p.requires_grad]
        if ps:
            out[name or "model"] = ps
    return out


# -- the recorder ----------------------------------------------------------------------------
class Rec:
    def __init__(self) -> None:
        self.scalars: dict[str, tuple[list[int], list[float]]] = {}
        self.hists: list[tuple[str, int, dict]] = []

    def add(self, key: str, step: int, v: float) -> None:
        ss, vs = self.scalars.setdefault(key, ([], []))
        ss.append(step)
        vs.append(float(v))


def _norm(ps: list[nn.Parameter], grad: bool) -> float:
    ts = [p.grad for p in ps if p.grad is not None] if grad else [p.detach() for p in ps]
    if not ts:
        return math.nan
    return float(torch.sqrt(sum((t.double() ** 2).sum() for t in ts)))  # type: ignore[arg-type]


def _conf_hist(logits: torch.Tensor, y: torch.Tensor) -> tuple[list[float], ...]:
    p = torch.softmax(logits.double(), -1)
    conf, pred = p.max(-1)
    right = (pred == y).double()
    b = torch.clamp((conf * BINS).long(), max=BINS - 1)
    counts = torch.bincount(b, minlength=BINS).double()
    correct = torch.bincount(b, weights=right, minlength=BINS)
    csum = torch.bincount(b, weights=conf, minlength=BINS)
    return counts.tolist(), correct.tolist(), csum.tolist()


# -- faults ----------------------------------------------------------------------------------
FAULTS: dict[str, tuple[str, ...]] = {
    # fault -> architectures it is injected into
    "nan_explosion": ("mlp", "cnn", "lstm", "lm"),
    "grad_spike": ("mlp", "cnn", "lstm", "lm"),
    "early_explosion": ("mlp", "lstm", "lm"),
    "lr_too_high": ("mlp", "cnn", "lstm"),
    "lr_jump": ("mlp", "cnn", "lstm", "lm"),
    "divergence": ("mlp", "cnn", "lstm"),
    "warmup_runaway": ("mlp", "cnn", "lm"),
    "overfitting": ("mlp", "cnn", "lstm"),
    "overfitting_per_epoch": ("mlp", "cnn", "lstm"),
    "no_zero_grad": ("mlp", "cnn", "lstm"),
    "zero_grad_after_backward": ("mlp", "cnn", "lstm", "lm"),
    "dead_relu": ("mlp", "cnn", "lstm"),
    "label_shift": ("mlp", "cnn", "lstm"),
    "no_signal": ("mlp", "cnn", "lstm", "lm"),
    "bad_init_scale": ("mlp", "cnn", "lstm", "lm"),
    "clip_too_tight": ("mlp", "cnn", "lstm", "lm"),
    "lr_too_low": ("mlp", "cnn", "lstm"),
}
HEALTHY_VARIANTS: dict[str, tuple[str, ...]] = {
    "": ARCHS,
    "warmup_cosine_clip": ("lm",),
    "frozen_backbone": ("mlp", "cnn"),
    "smoothing_bn": ("mlp", "cnn"),
    "per_epoch": ("mlp", "cnn", "lstm"),
}


def specs(seeds: int = 3, healthy_seeds: int = 5) -> list[Spec]:
    out = [Spec(a, f, s) for f, archs in FAULTS.items() for a in archs for s in range(seeds)]
    for v, archs in HEALTHY_VARIANTS.items():
        n = healthy_seeds if v == "" else seeds
        out += [Spec(a, "healthy", s, v) for a in archs for s in range(n)]
    return out


def _onset(spec: Spec) -> int:
    """The injection step: varies with the seed so no rule can learn one step number."""
    base = {
        "nan_explosion": 150,
        "grad_spike": 160,
        "lr_jump": 140,
        "early_explosion": 14,
        "divergence": 130,
    }
    return base.get(spec.fault, 1) + 7 * spec.seed


def truth(spec: Spec) -> Truth:
    f, x = spec.fault, _onset(spec)
    if f == "healthy":
        return Truth()
    if f == "nan_explosion":
        return Truth(
            ("exploding_gradients", "non_finite"),
            ("exploding_gradients",),
            ("divergence",) + COLLAPSE,
            x,
            delays={"exploding_gradients": x, "non_finite": x + 3},
        )
    if f == "grad_spike":
        return Truth(
            ("exploding_gradients",),
            ("exploding_gradients",),
            ("divergence",),
            x,
            delays={"exploding_gradients": x},
        )
    if f == "early_explosion":
        return Truth(
            ("exploding_gradients",),
            ("exploding_gradients",),
            ("divergence",),
            x,
            delays={"exploding_gradients": x},
        )
    if f == "lr_too_high":
        return Truth(("lr_too_high",), ("lr_too_high",), COLLAPSE, 1)
    if f == "lr_jump":
        return Truth(("lr_jump",), ("lr_jump",), COLLAPSE, x, delays={"lr_jump": x})
    if f == "divergence":
        return Truth(
            ("divergence",),
            ("divergence", "exploding_gradients"),
            COLLAPSE,
            x,
            delays={"divergence": x},
        )
    if f == "warmup_runaway":
        return Truth(("warmup_runaway",), ("warmup_runaway",), COLLAPSE + ("lr_too_high",), 1)
    if f in ("overfitting", "overfitting_per_epoch"):
        return Truth(("overfitting",), ("overfitting",), ("overconfidence",), onset_kind="val_min")
    if f == "no_zero_grad":
        return Truth(
            ("grad_accumulating",),
            ("grad_accumulating",),
            COLLAPSE,
            1,
            stays_open=("grad_accumulating",),
        )
    if f == "zero_grad_after_backward":
        return Truth(("no_update",), ("no_update",), COLLAPSE, 1, stays_open=("no_update",))
    if f == "dead_relu":
        return Truth(("dead_units",), ("dead_units",), COLLAPSE, 1)
    if f == "label_shift":
        return Truth(("label_shift",), ("label_shift",), ("overfitting",), 1)
    if f == "no_signal":
        return Truth(("not_learning",), ("not_learning",), COLLAPSE, 1)
    if f == "bad_init_scale":
        return Truth(("initial_loss",), ("initial_loss",), ("overconfidence", "divergence"), 1)
    if f == "clip_too_tight":
        return Truth(("grad_clipping",), ("grad_clipping",), COLLAPSE, 1)
    if f == "lr_too_low":
        return Truth(("update_size",), ("update_size",), COLLAPSE, 1)
    raise KeyError(f)


# -- one run ---------------------------------------------------------------------------------
def _setup(spec: Spec) -> dict[str, Any]:
    """Data, model, optimizer and loop settings of a spec (before the fault is applied)."""
    torch.manual_seed(spec.seed)
    arch, f, v = spec.arch, spec.fault, spec.variant
    k = VOCAB if arch == "lm" else 4
    cfg: dict[str, Any] = {"k": k, "steps": 300, "batch": 32, "eval_every": 20, "clip": None}
    cfg["smoothing"] = 0.1 if v == "smoothing_bn" else 0.0
    small = f in ("overfitting", "overfitting_per_epoch")
    if arch == "lm":
        cfg["batch"] = 16
        stream = _lm_stream(spec.seed, 40_000)
        cfg["train"] = stream[:36_000]
        cfg["val"] = stream[36_000 : 36_000 + 4 * 16 * (SEQ + 1)]
    else:
        n_tr = 256 if small else 2000
        cfg["train"] = _data(arch, spec.seed, n_tr, k, noise=0.4 if small else 0.0)
        noise = 0.4 if small else 0.0  # the validation data comes from the same noisy source
        cfg["val"] = _data(
            arch, spec.seed, 500, k, shift=(f == "label_shift"), train=False, noise=noise
        )
    if small:  # 8 steps an epoch: 40 epochs
        cfg["steps"], cfg["batch"] = 320, 32
        cfg["eval_every"] = 8
    if v == "per_epoch":
        # the base healthy training (300 steps), logged once an "epoch" of 10 steps: 30 epochs
        cfg["steps"], cfg["eval_every"] = 300, 10
    model = _model(arch, k, bn=(v == "smoothing_bn"))
    lr = {"mlp": 3e-3, "cnn": 3e-3, "lstm": 1e-2, "lm": 3e-3}[arch]
    if small:
        model = _model(arch, k)
        if arch == "mlp":
            model = nn.Sequential(
                nn.Linear(16, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, k)
            )
        lr = 3e-3
    cfg["lr"] = lr
    cfg["model"] = model
    if v == "frozen_backbone":
        # pre-train quickly (not recorded), then freeze the backbone and re-initialise the head
        opt0 = torch.optim.Adam(model.parameters(), lr=lr)
        x, y = cfg["train"]
        for _i in range(100):
            idx = torch.randint(len(x), (32,))
            opt0.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt0.step()
        mods = list(model.children())
        for m in mods[:-1]:
            for p in m.parameters():
                p.requires_grad_(False)
        mods[-1].reset_parameters()  # type: ignore[operator]
        cfg["lr"] = 1e-3
    if v == "warmup_cosine_clip":
        cfg["clip"] = 1.0
    if f == "clip_too_tight":
        cfg["clip"] = 1e-3
    return cfg


def _lr_at(spec: Spec, cfg: dict, step: int) -> float:
    lr, f, x = cfg["lr"], spec.fault, _onset(spec)
    if spec.variant == "warmup_cosine_clip":
        warm, total = 40, cfg["steps"]
        if step <= warm:
            return lr * step / warm
        return lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / (total - warm)))
    if f == "lr_too_high":
        return lr * 300
    if f == "lr_too_low":
        return 1e-8
    if f == "lr_jump" and step >= x:
        return lr * 100
    if f == "warmup_runaway":
        return lr * step / 5  # "warm up over 5 steps", but the ramp never stops
    return lr


def generate(spec: Spec) -> dict[str, Any]:
    cfg = _setup(spec)
    arch, f, k = spec.arch, spec.fault, cfg["k"]
    model: nn.Module = cfg["model"]
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg["lr"])
    crit = nn.CrossEntropyLoss(label_smoothing=cfg["smoothing"])
    mods = _modules(model)
    x_onset = _onset(spec)
    if f == "dead_relu":
        # a hidden ReLU layer whose bias starts far negative: its units never fire
        with torch.no_grad():
            layer = model.fc if isinstance(model, LSTMNet) else model[0]  # type: ignore[index]
            layer.bias.fill_(-20.0)  # type: ignore[union-attr,operator]
    if f == "bad_init_scale":
        with torch.no_grad():
            last = list(mods)[-1]
            for p in mods[last]:
                p.mul_(40.0)
    rec = Rec()
    per_epoch = spec.variant == "per_epoch" or f == "overfitting_per_epoch"
    g = torch.Generator().manual_seed(spec.seed + 17)
    train, val = cfg["train"], cfg["val"]
    epoch_losses: list[float] = []
    label_counts = torch.zeros(k)
    steps, batch, every = cfg["steps"], cfg["batch"], cfg["eval_every"]
    for step in range(1, steps + 1):
        for grp in opt.param_groups:
            grp["lr"] = _lr_at(spec, cfg, step)
        xb, yb = _batch(arch, train, batch, g)
        if f == "no_signal":
            xb = torch.zeros_like(xb)
        if f == "divergence" and step >= x_onset:
            # the labels become garbage mid-run (a broken data pipeline): the loss climbs far up
            yb = torch.randint(k, yb.shape, generator=g)
        # injected loss scale: an error that grows 100x per step and ends in NaN, one bad batch
        # with 1000x the usual error, a loss that becomes 60x larger early on (and stays so)
        boost = 1.0
        if f == "nan_explosion" and step >= x_onset:
            boost = 10.0 ** (2 * (step - x_onset + 1)) if step < x_onset + 3 else math.nan
        if f == "grad_spike" and step == x_onset:
            boost = 1000.0
        if f == "early_explosion" and step >= x_onset:
            boost = 60.0
        if f not in ("no_zero_grad",) and f != "zero_grad_after_backward":
            opt.zero_grad()
        out = model(xb)
        loss = crit(out.reshape(-1, k), yb.reshape(-1))
        if boost != 1.0:
            loss = loss * boost
        loss.backward()
        if f == "zero_grad_after_backward":
            opt.zero_grad()
        label_counts += torch.bincount(yb.reshape(-1), minlength=k)[:k].float()
        lv = float(loss.detach())
        if per_epoch:
            epoch_losses.append(lv)
        else:
            rec.add(KEYS.TRAIN_LOSS, step, lv)
            rec.add(KEYS.LR_FIRST, step, opt.param_groups[0]["lr"])
            gn = {n: _norm(ps, True) for n, ps in mods.items()}
            fin = [v for v in gn.values() if not math.isnan(v)]
            if fin:
                rec.add(KEYS.GRAD_NORM_TOTAL, step, math.sqrt(sum(v * v for v in fin)))
                for n, v in gn.items():
                    if not math.isnan(v):
                        rec.add(f"{PREFIXES.GRAD_NORM}{n}", step, v)
        if cfg["clip"] is not None:
            torch.nn.utils.clip_grad_norm_(params, cfg["clip"])
        want_ratio = not per_epoch and update_due(step)
        before = (
            {n: [p.detach().clone() for p in ps] for n, ps in mods.items()} if want_ratio else {}
        )
        opt.step()
        if want_ratio:
            dw2 = w2 = 0.0
            for n, ps in mods.items():
                d = sum(
                    float(((p.detach() - b) ** 2).sum()) for p, b in zip(ps, before[n], strict=True)
                )
                w = sum(float((b**2).sum()) for b in before[n])
                dw2, w2 = dw2 + d, w2 + w
                if w > 0:
                    rec.add(f"{PREFIXES.UPDATE_RATIO}{n}", step, math.sqrt(d / w))
            if w2 > 0:
                rec.add(KEYS.UPDATE_RATIO_TOTAL, step, math.sqrt(dw2 / w2))
        if not per_epoch and step % 50 == 0:
            for n, ps in mods.items():
                rec.add(f"{PREFIXES.PARAM_NORM}{n}", step, _norm(ps, False))
        if step % every == 0:
            at = step // every if per_epoch else step
            if per_epoch:
                fin = [v for v in epoch_losses if math.isfinite(v)]
                rec.add(KEYS.TRAIN_LOSS, at, sum(fin) / len(fin) if fin else math.nan)
                epoch_losses = []
            _evaluate(rec, model, crit, arch, val, k, at, label_counts, per_epoch)
            label_counts = torch.zeros(k)
    facts: dict[str, Any] = {
        "num_classes": k,
        "batch_size": batch,
        "label_smoothing": cfg["smoothing"],
        "optimizer": {"class": "Adam", "param_groups": [{"lr": cfg["lr"], "weight_decay": 0.0}]},
        "layers": {n: sum(p.numel() for p in ps) for n, ps in mods.items()},
    }
    if cfg["clip"] is not None:
        facts["grad_clip"] = cfg["clip"]
    if per_epoch:
        facts = {"num_classes": k}  # an import: only the class count is known
    return {"spec": asdict(spec), "facts": facts, "scalars": rec.scalars, "hists": rec.hists}


def _batch(arch: str, train: Any, batch: int, g: torch.Generator) -> tuple:
    if arch == "lm":
        starts = torch.randint(len(train) - SEQ - 1, (batch,), generator=g)
        seq = torch.stack([train[s : s + SEQ + 1] for s in starts.tolist()])
        return seq[:, :-1], seq[:, 1:]
    x, y = train
    idx = torch.randint(len(x), (batch,), generator=g)
    return x[idx], y[idx]


def _evaluate(
    rec: Rec,
    model: nn.Module,
    crit: nn.Module,
    arch: str,
    val: Any,
    k: int,
    step: int,
    train_counts: torch.Tensor,
    per_epoch: bool,
) -> None:
    model.eval()
    with torch.no_grad():
        if arch == "lm":
            seq = val.reshape(-1, SEQ + 1)
            x, y = seq[:, :-1], seq[:, 1:].reshape(-1)
            logits = model(x).reshape(-1, k)
        else:
            x, y = val
            logits = model(x)
        loss = float(nn.functional.cross_entropy(logits, y))
        acc = float((logits.argmax(-1) == y).double().mean())
    model.train()
    rec.add(KEYS.VAL_LOSS, step, loss)
    rec.add(KEYS.VAL_ACCURACY, step, acc)
    if per_epoch or not bool(torch.isfinite(logits).all()):
        return
    counts, correct, csum = _conf_hist(logits, y)
    edges = [i / BINS for i in range(BINS + 1)]
    rec.hists.append(
        (
            KEYS.VAL_CONFIDENCE,
            step,
            {"edges": edges, "counts": counts, "correct": correct, "conf_sum": csum},
        )
    )
    rec.hists.append((KEYS.TRAIN_LABELS, step, {"counts": train_counts.tolist(), "edges": []}))
    rec.hists.append(
        (
            KEYS.VAL_LABELS,
            step,
            {"counts": torch.bincount(y, minlength=k)[:k].float().tolist(), "edges": []},
        )
    )


def ci_specs() -> list[Spec]:
    """The representative part run in CI: every fault once (architectures in rotation), seed 0,
    and one healthy run of each architecture and of each healthy variant."""
    out = [Spec(archs[i % len(archs)], f, 0) for i, (f, archs) in enumerate(FAULTS.items())]
    out += [Spec(a, "healthy", 0) for a in ARCHS]
    out += [Spec(archs[0], "healthy", 0, v) for v, archs in HEALTHY_VARIANTS.items() if v]
    return out


def load(spec: Spec, cache: Path | None = None) -> dict[str, Any]:
    """The run of ``spec``, from the cache or trained now (and cached)."""
    key = hashlib.sha1(json.dumps([VERSION, asdict(spec)]).encode()).hexdigest()[:12]
    path = (cache or CACHE) / f"{spec.id}-{key}.json"
    if path.exists():
        return json.loads(path.read_text())
    torch.set_num_threads(1)
    run = generate(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    tmp.write_text(json.dumps(run, allow_nan=True))
    tmp.replace(path)
    return run
