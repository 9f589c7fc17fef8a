"""What a rule is, what it sees, and what it reports."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .state import RunState
from .stats import entropy, smoothed_target_entropy

Severity = Literal["info", "warning", "critical"]
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}

WARMUP_STEPS = 50  # literature §3.1(1): W0 = max(50, 1% of planned steps); planned steps unknown
# a warm-up guard ends once the LR is 100x its first value (LinearLR(start_factor=0.01) ends there)
RAMP_LIMIT = 100.0


@dataclass
class Finding:
    """A rule's verdict that its condition holds now."""

    severity: Severity
    onset_step: int
    message: str
    remedy: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass
class Facts:
    """What the run's captured config says (``config["fitscope"]``); never its name or project."""

    num_classes: int | None = None
    label_smoothing: float = 0.0
    amp: bool = False
    batch_size: int | None = None
    world_size: int = 1
    grad_clip: float | None = None
    optimizer: str | None = None
    param_groups: list[dict] = field(default_factory=list)
    layers: dict[str, int] = field(default_factory=dict)
    hooked: bool = False  # the optimizer hooks are attached (gradients would be captured)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Facts:
        fs = config.get("fitscope") if isinstance(config, Mapping) else None
        if not isinstance(fs, Mapping):
            return cls()
        raw_opt, raw_layers = fs.get("optimizer"), fs.get("layers")
        opt: Mapping[str, Any] = raw_opt if isinstance(raw_opt, Mapping) else {}
        layers: Mapping[str, Any] = raw_layers if isinstance(raw_layers, Mapping) else {}
        groups = [g for g in (opt.get("param_groups") or []) if isinstance(g, Mapping)]
        return cls(
            num_classes=_int(fs.get("num_classes")),
            label_smoothing=_float(fs.get("label_smoothing")) or 0.0,
            amp=bool(fs.get("amp")),
            batch_size=_int(fs.get("batch_size")),
            world_size=_int(fs.get("world_size")) or 1,
            grad_clip=_float(fs.get("grad_clip")),
            optimizer=str(opt["class"]) if opt.get("class") else None,
            param_groups=[dict(g) for g in groups],
            layers={str(k): int(v) for k, v in layers.items() if isinstance(v, (int, float))},
            hooked=bool(opt),
        )


def _int(v: Any) -> int | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 1:
        return None
    return int(v)


def _float(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


@dataclass
class Context:
    """Everything a rule may look at: the run's windows, its facts, the current step."""

    state: RunState
    facts: Facts
    step: int
    open_rules: dict[str, int] = field(default_factory=dict)  # rule -> onset of its open episode

    @property
    def classes(self) -> int | None:
        if self.facts.num_classes:
            return self.facts.num_classes
        n = len(self.state.labels.train) or len(self.state.labels.val)
        return n if n >= 2 else None

    @property
    def floor(self) -> float:
        """Lowest reachable loss: 0, or the smoothed targets' entropy under label smoothing."""
        k = self.classes
        return smoothed_target_entropy(k, self.facts.label_smoothing) if k else 0.0

    @property
    def chance(self) -> float:
        """Loss of a model that predicts the class prior: ln K, or the prior's entropy."""
        k = self.classes
        if not k:
            return math.nan
        prior = self.state.labels.train
        if len(prior) == k and sum(prior) >= 10 * k:
            return max(entropy(prior), self.floor)
        return math.log(k)

    @property
    def init_loss(self) -> float:
        t = self.state.train
        return t.init if t.init_n else math.nan

    @property
    def lr_ramp(self) -> bool:
        """A learning-rate warm-up is rising, within its limits: not beyond ``RAMP_LIMIT`` x its
        first value, and not itself a finding (``warmup_runaway``: the loss got worse)."""
        lr = self.state.lr
        if not lr.warming_up() or "warmup_runaway" in self.open_rules:
            return False
        top, start = lr.top(), lr.start
        return not (start > 0 and top >= RAMP_LIMIT * start)

    @property
    def warming_up(self) -> bool:
        """Warm-up phase of the step rules: the first 50 training steps (counted, whatever their
        numbers), or while a learning-rate warm-up rises within its limits."""
        return self.state.steps_seen < WARMUP_STEPS or self.lr_ramp

    def excess(self, loss: float) -> float:
        return loss - self.floor


Check = Callable[[Context, Mapping[str, float]], Finding | None]


@dataclass
class Rule:
    """A diagnosis rule: a pure ``check`` plus when to run it and how long an episode lingers."""

    id: str
    on: Literal["step", "eval", "config", "labels"]
    check: Check
    params: dict[str, float]
    clear_after: int = 50  # steps (or evaluations, for eval rules) without the condition
    during_warmup: bool = False  # may raise while warming up


def fmt(x: float, digits: int = 3) -> str:
    """A number for a message: 3 significant digits, thousands separated."""
    if not math.isfinite(x):
        return str(x)
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
        return f"{x:.2e}"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def pct(x: float) -> str:
    return f"{100 * x:.0f}%" if abs(x) >= 0.1 else f"{100 * x:.1f}%"


def step_str(step: int) -> str:
    return f"{step:,}"
