"""Rule thresholds: defaults, then server-wide overrides, then the run's own ``rules=``.

An override is ``{"rule_id": False}`` (switch it off), ``{"rule_id": {"enabled": False}}``,
or ``{"rule_id": {"param": number, ...}}``. Unknown rules and parameters are ignored (and
reported once in the server log), never an error for the training run.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from .rules import BY_ID

log = logging.getLogger("fitscope.diagnosis")
_warned: set[str] = set()


def _warn_once(msg: str) -> None:
    if msg not in _warned and len(_warned) < 1000:
        _warned.add(msg)
        log.warning(msg)


def resolve(*layers: Any) -> tuple[dict[str, dict[str, float]], set[str]]:
    """Each rule's parameters, and the set of rules switched off, after applying ``layers``."""
    params = {rid: dict(rule.params) for rid, rule in BY_ID.items()}
    disabled: set[str] = set()
    for layer in layers:
        if not isinstance(layer, Mapping):
            continue
        for rid, spec in layer.items():
            if rid not in BY_ID:
                _warn_once(f"rules override: unknown rule {rid!r} ignored")
                continue
            if isinstance(spec, bool):
                (disabled.discard if spec else disabled.add)(rid)
                continue
            if not isinstance(spec, Mapping):
                _warn_once(f"rules override for {rid!r} must be a bool or an object; ignored")
                continue
            for name, value in spec.items():
                if name == "enabled":
                    (disabled.discard if value else disabled.add)(rid)
                elif name not in params[rid]:
                    _warn_once(f"rules override: {rid!r} has no parameter {name!r}; ignored")
                elif (
                    isinstance(value, (int, float))
                    and not isinstance(value, bool)
                    and math.isfinite(value)
                ):
                    params[rid][name] = float(value)
                else:
                    _warn_once(f"rules override: {rid}.{name} must be a number; ignored")
    return params, disabled


def run_overrides(config: Mapping[str, Any]) -> Any:
    fs = config.get("fitscope") if isinstance(config, Mapping) else None
    return fs.get("rules") if isinstance(fs, Mapping) else None
