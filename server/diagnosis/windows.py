"""Bounded windows of a run's series, updated one point at a time.

Each update is O(1) amortised (a few window-sized operations at most); nothing here ever
re-reads a run's history.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

STEP_WINDOW = 200  # steps kept per step-series window: 100 for a test + 100 for its baseline
EVAL_WINDOW = 64  # evaluations kept (patience of early stopping is 10-15 evals)
SMOOTH_EVALS = 3  # validation loss averaged over 3 evaluations before comparing with its best
BLOCK = 10  # steps per block of the long loss history
MAX_BLOCKS = 256  # long history: when full, neighbouring blocks merge (block size doubles)
MAX_LAYERS = 1024  # per-layer bookkeeping is capped for very large models
MAX_CLASSES = 10_000
EMA_ALPHA = 0.1  # smoothed loss S: half-life ~7 steps (fastai smooths before its 4x test)
# the loss "level": mean of the last 50 losses; its minimum is a baseline that small-batch noise
# does not drag down the way it drags down the minimum of a short moving average
LEVEL_STEPS = 50
UPDATE_RECORDS = 5  # update-size records kept per layer
TINY_UPDATE = 1e-6  # ||dw|| / ||w|| below this in every layer that moves: the model barely changes
EARLY_STEPS = 10  # "early in the run": the first 10 training losses (the first updates)
LR_REBASELINE = 1.5  # an LR drop by this factor in one step re-baselines loss windows
# one-step gradient-norm jumps: against the median of the previous 20 norms (at least 3: the run's
# own first steps), a jump is 10x that level (Megatron-LM calls a loss spiky above 10x) and 6
# robust SDs of the log-norms (ZClip clips from z = 2.5; an alert must be far rarer)
SPIKE_REF = 20
SPIKE_MIN_REF = 3
SPIKE_RATIO = 10.0
SPIKE_Z = 6.0


@dataclass
class Ring:
    """The last ``cap`` (step, value) pairs of a series."""

    cap: int = STEP_WINDOW
    steps: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def push(self, step: int, value: float) -> None:
        self.steps.append(step)
        self.values.append(value)
        if len(self.steps) > self.cap:
            del self.steps[0], self.values[0]

    def last(self, n: int) -> list[float]:
        return self.values[-n:] if n > 0 else []

    def since(self, step: int) -> list[float]:
        """Values at steps >= ``step`` (steps are increasing)."""
        return self.values[bisect.bisect_left(self.steps, step) :]

    def between(self, start: int, end: int) -> list[float]:
        lo, hi = bisect.bisect_left(self.steps, start), bisect.bisect_left(self.steps, end)
        return self.values[lo:hi]

    def __len__(self) -> int:
        return len(self.steps)


@dataclass
class Train:
    count: int = 0  # finite and non-finite training losses seen
    last_step: int = 0
    loss: Ring = field(default_factory=Ring)  # raw losses
    ema: Ring = field(default_factory=Ring)  # smoothed loss S
    s: float = math.nan
    last_finite: float = math.nan
    first: float = math.nan  # loss of the first step (before any update)
    first_step: int = 0
    init_sum: float = 0.0
    init_n: int = 0  # mean of the first 10 finite losses: a less noisy initial loss
    early_max: float = math.nan  # highest loss among the first EARLY_STEPS (non-finite counts)
    early_max_step: int = 0
    best: float = math.nan  # lowest S since the baseline
    best_step: int = 0
    best_level: float = math.nan  # lowest loss level (50-step mean) since the baseline
    best_level_step: int = 0
    baseline_step: int = 0  # last LR decrease (windows restart there)
    nonfinite_total: int = 0
    nonfinite_first: int = 0  # first step of the current run of non-finite losses
    nonfinite_streak: int = 0
    skipped_streak: int = 0  # AMP: consecutive steps skipped for inf/NaN gradients
    blocks: list[list[float]] = field(default_factory=list)  # [end_step, mean, n]
    block_size: int = BLOCK
    _acc: list[float] = field(default_factory=lambda: [0.0, 0.0])  # sum, n of the open block

    @property
    def init(self) -> float:
        return self.init_sum / self.init_n if self.init_n else math.nan

    def add(self, step: int, v: float) -> None:
        self.count += 1
        self.last_step = step
        self.loss.push(step, v)
        if self.count <= EARLY_STEPS and not (v <= self.early_max):
            self.early_max, self.early_max_step = (v if not math.isnan(v) else math.inf), step
        if not math.isfinite(v):
            if self.nonfinite_streak == 0:
                self.nonfinite_first = step
            self.nonfinite_streak += 1
            self.nonfinite_total += 1
            self.ema.push(step, self.s)
            return
        self.nonfinite_streak = 0
        self.last_finite = v
        if self.init_n < 10:
            if self.init_n == 0:
                self.first, self.first_step = v, step
            self.init_sum += v
            self.init_n += 1
        self.s = v if not math.isfinite(self.s) else self.s + EMA_ALPHA * (v - self.s)
        self.ema.push(step, self.s)
        if not math.isfinite(self.best) or self.s < self.best:
            self.best, self.best_step = self.s, step
        self._acc[0] += v
        self._acc[1] += 1
        if self._acc[1] >= self.block_size:
            self.blocks.append([step, self._acc[0] / self._acc[1], self._acc[1]])
            self._acc = [0.0, 0.0]
            if len(self.blocks) > MAX_BLOCKS:
                self._merge_blocks()
        if self.count % BLOCK == 0 and len(self.loss.since(self.baseline_step)) >= LEVEL_STEPS:
            level = self.level()
            if math.isfinite(level) and not (level >= self.best_level):
                self.best_level, self.best_level_step = level, step

    def level(self) -> float:
        """Mean of the last 50 finite training losses."""
        xs = [x for x in self.loss.last(LEVEL_STEPS) if math.isfinite(x)]
        return sum(xs) / len(xs) if xs else math.nan

    def _merge_blocks(self) -> None:
        merged = []
        for i in range(0, len(self.blocks) - 1, 2):
            (_, m1, n1), (s2, m2, n2) = self.blocks[i], self.blocks[i + 1]
            merged.append([s2, (m1 * n1 + m2 * n2) / (n1 + n2), n1 + n2])
        if len(self.blocks) % 2:
            merged.append(self.blocks[-1])
        self.blocks = merged
        self.block_size *= 2

    def rebaseline(self, step: int) -> None:
        self.baseline_step = step
        self.best_level, self.best_level_step = math.nan, step
        if math.isfinite(self.s):
            self.best, self.best_step = self.s, step

    def block_mean_near(self, step: int) -> float:
        """Mean loss of the long-history block ending closest to ``step``."""
        if not self.blocks:
            return math.nan
        i = bisect.bisect_left([b[0] for b in self.blocks], step)
        near = [b for b in self.blocks[max(0, i - 1) : i + 1]]
        return min(near, key=lambda b: abs(b[0] - step))[1]


@dataclass
class Grads:
    total: Ring = field(default_factory=Ring)
    ratio: Ring = field(default_factory=Ring)  # first layer / last layer
    first: Ring = field(default_factory=Ring)  # first layer's norm
    min_rms: Ring = field(default_factory=Ring)  # smallest per-entry RMS of a non-zero hidden layer
    zero_since: dict[str, int] = field(default_factory=dict)  # layer -> first step of exact zeros
    order: list[str] = field(default_factory=list)  # layers seen, in order of appearance
    last_step: int = 0
    last_layer_norm: float = math.nan
    nonfinite_streak: int = 0
    nonfinite_first: int = 0
    zero_total_streak: int = 0
    zero_total_first: int = 0
    # the latest one-step jump of the total norm above its recent level (see ``jump``)
    spike_step: int = 0
    spike_ratio: float = math.nan
    spike_base: float = math.nan
    spike_z: float = math.nan

    def add(
        self, step: int, total: float, layers: dict[str, float], order: list[str], numel: dict
    ) -> bool:
        """Record one step; True when its total norm jumped far above the recent level."""
        self.last_step = step
        spiked = self.jump(step, total)
        self.total.push(step, total)
        if not math.isfinite(total):
            if self.nonfinite_streak == 0:
                self.nonfinite_first = step
            self.nonfinite_streak += 1
        else:
            self.nonfinite_streak = 0
        if total == 0.0:
            if self.zero_total_streak == 0:
                self.zero_total_first = step
            self.zero_total_streak += 1
        else:
            self.zero_total_streak = 0
        for name in layers:
            if name not in self.order and len(self.order) < MAX_LAYERS:
                self.order.append(name)
        ordered = [n for n in (order or self.order) if n in layers]
        if not ordered:
            return spiked
        g1, gn = layers[ordered[0]], layers[ordered[-1]]
        self.last_layer_norm = gn
        self.first.push(step, g1)
        ok = math.isfinite(g1) and math.isfinite(gn) and g1 > 0 and gn > 0
        self.ratio.push(step, g1 / gn if ok else math.nan)
        rms = [
            layers[n] / math.sqrt(numel[n])
            for n in ordered[:-1]
            if layers[n] > 0 and math.isfinite(layers[n]) and numel.get(n)
        ]
        self.min_rms.push(step, min(rms) if rms else math.nan)
        for n in ordered[:-1]:
            if layers[n] == 0.0:
                self.zero_since.setdefault(n, step)
            else:
                self.zero_since.pop(n, None)
        for n in list(self.zero_since):
            if n not in layers:
                self.zero_since.pop(n, None)
        return spiked

    def jump(self, step: int, total: float) -> bool:
        """Compare ``total`` with the median of the previous ``SPIKE_REF`` norms (the run's own
        first steps when it has no more): a ratio of ``SPIKE_RATIO`` or more whose log is also
        ``SPIKE_Z`` robust standard deviations above the others' is a jump (an overflow to
        +inf counts too). ZClip (2025) clips at a z-score of 2.5; an alert needs far more."""
        last = self.total.values[-SPIKE_REF:]
        if len(last) < SPIKE_MIN_REF or math.isnan(total) or total <= 0:
            return False
        low = min(last)  # below 10x the smallest norm, it is below 10x the median: done (cheap)
        if low > 0 and total < SPIKE_RATIO * low:
            return False
        prev = [v for v in last if math.isfinite(v) and v > 0]
        if len(prev) < SPIKE_MIN_REF:
            return False
        prev.sort()
        n = len(prev)
        base = prev[n // 2] if n % 2 else 0.5 * (prev[n // 2 - 1] + prev[n // 2])
        ratio = total / base
        if not ratio >= SPIKE_RATIO:
            return False
        logs = [math.log(v) for v in prev]
        mid = math.log(base)
        dev = sorted(abs(x - mid) for x in logs)
        spread = 1.4826 * dev[n // 2]
        z = (math.log(total) - mid) / max(spread, 0.05) if math.isfinite(total) else math.inf
        if z < SPIKE_Z:
            return False
        self.spike_step, self.spike_ratio, self.spike_base, self.spike_z = step, ratio, base, z
        return True


@dataclass
class Updates:
    """Update sizes ||dw|| / ||w|| (SageMaker Debugger's weight-update ratio), when recorded."""

    total: Ring = field(default_factory=lambda: Ring(cap=50))
    layers: dict[str, list[float]] = field(default_factory=dict)  # last 5 ratios per layer
    first_step: int = 0  # step of the first record of the last 5
    last_step: int = 0
    records: int = 0
    tiny_since: int = 0  # first record of the current run where every moving layer was tiny
    tiny_records: int = 0
    early: list[float] = field(default_factory=list)  # the first UPDATE_RECORDS totals

    def add(self, step: int, total: float | None, layers: dict[str, float]) -> None:
        self.last_step = step
        self.records += 1
        if total is not None:
            self.total.push(step, total)
            if len(self.early) < UPDATE_RECORDS:
                self.early.append(total)
            if len(self.total) >= UPDATE_RECORDS:
                self.first_step = self.total.steps[-UPDATE_RECORDS]
        moving = [v for v in layers.values() if v > 0 and math.isfinite(v)]
        if moving and max(moving) < TINY_UPDATE:
            if not self.tiny_records:
                self.tiny_since = step
            self.tiny_records += 1
        else:
            self.tiny_records = 0
        for n, v in layers.items():
            xs = self.layers.get(n)
            if xs is None:
                if len(self.layers) >= MAX_LAYERS:
                    continue
                xs = self.layers[n] = []
            xs.append(v)
            if len(xs) > UPDATE_RECORDS:
                del xs[0]


@dataclass
class LR:
    last: dict[str, float] = field(default_factory=dict)
    peak: dict[str, float] = field(default_factory=dict)  # highest LR before the last step
    flat_for: dict[str, int] = field(default_factory=dict)  # steps without an increase
    rising: Ring = field(default_factory=lambda: Ring(cap=20))  # 1.0 where some LR rose
    early_increase: bool = False  # some LR rose during the first steps (a warm-up)
    steps: int = 0
    zero_streak: int = 0  # consecutive steps where every LR is 0
    jump_step: int = 0
    jump_group: str = ""
    jump_from: float = math.nan
    jump_to: float = math.nan
    jump_peak: float = math.nan
    without_grad: int = 0  # optimizer steps in a row with no gradient at all
    without_grad_first: int = 0
    start: float = math.nan  # first non-zero learning rate seen (largest group)
    ramp_since: int = 0  # first step of the current LR ramp (most recent steps raising the LR)

    def add(self, step: int, lrs: dict[str, float], jump_factor: float, probe: int) -> bool:
        """Record one step's LRs; returns True when some LR dropped enough to re-baseline."""
        self.steps += 1
        rose = dropped = False
        for g, v in lrs.items():
            prev = self.last.get(g)
            self.last[g] = v
            if prev is None or not math.isfinite(v):
                continue
            if v > prev * (1 + 1e-9):
                rose = True
                peak = self.peak.get(g, prev)
                if (
                    prev > 0
                    and v >= jump_factor * prev
                    and self.flat_for.get(g, 0) >= 10
                    and v > 2 * peak
                ):
                    self.jump_step, self.jump_group = step, g
                    self.jump_from, self.jump_to, self.jump_peak = prev, v, peak
                self.flat_for[g] = 0
            else:
                self.flat_for[g] = self.flat_for.get(g, 0) + 1
            if v * LR_REBASELINE < prev:
                dropped = True
            self.peak[g] = max(self.peak.get(g, prev), prev)
        top = max((v for v in lrs.values() if math.isfinite(v)), default=0.0)
        if math.isnan(self.start) and top > 0:
            self.start = top
        self.rising.push(step, 1.0 if rose else 0.0)
        if not self.warming_up():
            self.ramp_since = 0
        elif not self.ramp_since:
            self.ramp_since = self.rising.steps[0]
        if rose and self.steps <= probe:
            self.early_increase = True
        if lrs and all(v == 0 for v in lrs.values()):
            self.zero_streak += 1
        else:
            self.zero_streak = 0
        return dropped

    def warming_up(self) -> bool:
        """Most of the last 20 steps raised some LR: a warm-up (or a ramp) is in progress."""
        r = self.rising.values
        return len(r) >= 5 and sum(r) >= 0.5 * len(r)

    def top(self) -> float:
        return max((v for v in self.last.values() if math.isfinite(v)), default=math.nan)


@dataclass
class Params:
    last: dict[str, float] = field(default_factory=dict)
    last_step: int = 0
    unchanged_streak: int = 0  # consecutive snapshots where no layer's norm moved
    unchanged_since: int = 0

    def add(self, step: int, norms: dict[str, float]) -> None:
        if self.last:
            same = all(
                n in self.last and abs(v - self.last[n]) <= 1e-7 * max(abs(v), 1e-30)
                for n, v in norms.items()
            )
            if same:
                if self.unchanged_streak == 0:
                    self.unchanged_since = self.last_step
                self.unchanged_streak += 1
            else:
                self.unchanged_streak = 0
        self.last = dict(list(norms.items())[:MAX_LAYERS])
        self.last_step = step


@dataclass
class Eval:
    step: int
    loss: float = math.nan
    acc: float = math.nan
    n: float = 0.0  # validation examples (from the confidence histogram)
    conf: float = math.nan  # mean max-softmax confidence
    ece: float = math.nan
    high: float = math.nan  # share of predictions in the top confidence bin
    train: float = math.nan  # training loss level (50-step mean) when the evaluation ran
    smooth: float = math.nan  # mean validation loss of this and the 2 previous evaluations


@dataclass
class Evals:
    items: list[Eval] = field(default_factory=list)
    count: int = 0
    best_loss: float = math.nan
    best_step: int = 0
    best_index: int = 0  # evaluation number (0-based) of the best loss
    best_acc: float = math.nan
    smooth_best: float = math.nan  # lowest 3-evaluation mean of the validation loss
    smooth_best_step: int = 0
    smooth_best_train: float = math.nan
    last_step: int = -1

    def add(self, e: Eval, min_delta: float) -> None:
        self.items.append(e)
        if len(self.items) > EVAL_WINDOW:
            del self.items[0]
        self.last_step = e.step
        last3 = [x.loss for x in self.items[-SMOOTH_EVALS:]]
        if len(last3) == SMOOTH_EVALS and all(math.isfinite(x) for x in last3):
            e.smooth = sum(last3) / SMOOTH_EVALS
            if not (e.smooth >= self.smooth_best):
                self.smooth_best, self.smooth_best_step = e.smooth, e.step
                self.smooth_best_train = e.train
        if math.isfinite(e.loss) and (
            not math.isfinite(self.best_loss) or e.loss < self.best_loss * (1 - min_delta)
        ):
            self.best_loss, self.best_step, self.best_index = e.loss, e.step, self.count
        if math.isfinite(e.acc) and (not math.isfinite(self.best_acc) or e.acc > self.best_acc):
            self.best_acc = e.acc
        self.count += 1

    @property
    def since_best(self) -> int:
        """Evaluations since the best one (0 when the last one is the best)."""
        return self.count - 1 - self.best_index


@dataclass
class Labels:
    train: list[float] = field(default_factory=list)  # cumulative counts per class
    val: list[float] = field(default_factory=list)  # counts of the latest evaluation
    val_step: int = -1
    train_step: int = -1
    # over-dispersion of the label counts: chi-square / dof of each training snapshot against
    # the snapshots before it. About 1 for independent samples; far above 1 for the tokens of a
    # language model (tokens of a sequence are correlated): the design effect by which the
    # counts overstate the sample size
    disp_sum: float = 0.0
    disp_n: int = 0

    def add_train(self, step: int, counts: list[float]) -> None:
        counts = counts[:MAX_CLASSES]
        if sum(self.train) > 0 and sum(c for c in counts if math.isfinite(c)) > 0:
            stat, dof = chi2_homogeneity(self.train, counts)
            if dof > 0:
                self.disp_sum += stat / dof
                self.disp_n += 1
        if len(counts) > len(self.train):
            self.train += [0.0] * (len(counts) - len(self.train))
        for i, c in enumerate(counts):
            if math.isfinite(c):
                self.train[i] += c
        self.train_step = step


def chi2_homogeneity(a: list[float], b: list[float]) -> tuple[float, int]:
    """Chi-square statistic and degrees of freedom of a 2 x K table of counts."""
    k = max(len(a), len(b))
    a = [x if math.isfinite(x) else 0.0 for x in a] + [0.0] * (k - len(a))
    b = [x if math.isfinite(x) else 0.0 for x in b] + [0.0] * (k - len(b))
    na, nb = sum(a), sum(b)
    n = na + nb
    stat, dof = 0.0, -1
    if na <= 0 or nb <= 0:
        return 0.0, 0
    for x, y in zip(a, b, strict=True):
        col = x + y
        if col <= 0:
            continue
        dof += 1
        for obs, row in ((x, na), (y, nb)):
            exp = row * col / n
            stat += (obs - exp) ** 2 / exp
    return stat, max(dof, 0)
