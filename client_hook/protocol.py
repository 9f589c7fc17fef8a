"""fitscope's wire protocol: the one home of what the hook, the importers, the server and the
web agree on.

- **Floats.** Plain JSON has no NaN or infinity, and a training run that goes NaN is exactly the
  run someone needs to see. Non-finite floats travel as the strings ``"NaN"``, ``"Infinity"``
  and ``"-Infinity"`` wherever a number is expected; everything else is ordinary JSON. The read
  API uses the same encoding, so a value survives hook -> server -> database -> browser
  unchanged.
- **Metric keys.** The names the hook records and the diagnosis reads (``KEYS``), and the
  prefixes of the per-layer and per-split families.
- **Endpoints.** The API paths, built by the functions in ``paths``.
- **Messages.** The create -> batch -> finish bodies, built once for the hook and the importers.
- **Version.** ``PROTOCOL_VERSION`` travels in the ``X-Fitscope-Protocol`` header of every
  request a client sends; the server refuses a version it does not speak with a 4xx that says so.

This module is public and imports nothing from the rest of the package.
"""

from __future__ import annotations

import math
from typing import Any, Final, Literal

# -- version ---------------------------------------------------------------------------------
PROTOCOL_VERSION: Final = 1
PROTOCOL_HEADER: Final = "X-Fitscope-Protocol"

# -- floats ----------------------------------------------------------------------------------
NAN: Final = "NaN"
POS_INF: Final = "Infinity"
NEG_INF: Final = "-Infinity"
NON_FINITE: Final = {NAN: math.nan, POS_INF: math.inf, NEG_INF: -math.inf}
# the same three strings as a type (a ``Literal`` cannot name the constants above)
NonFinite = Literal["NaN", "Infinity", "-Infinity"]
WireFloat = float | NonFinite  # a number as it travels: itself, or its non-finite string


def encode_float(x: float) -> WireFloat:
    """Return ``x`` itself when finite, otherwise its string encoding."""
    if x != x:
        return NAN
    if x == math.inf:
        return POS_INF
    if x == -math.inf:
        return NEG_INF
    return x


def decode_float(x: object) -> float:
    """Decode one wire value; raise ``ValueError`` for anything that is not a number."""
    if isinstance(x, bool):
        raise ValueError(f"expected a number, got boolean {x!r}")
    if isinstance(x, (int, float)):
        return float(x)
    if isinstance(x, str):
        try:
            return NON_FINITE[x]
        except KeyError:
            raise ValueError(
                f"expected a number or one of {NAN!r}, {POS_INF!r}, {NEG_INF!r}; got {x[:40]!r}"
            ) from None
    raise ValueError(f"expected a number, got {type(x).__name__}")


def json_safe(obj: Any, depth: int = 0) -> Any:
    """A copy of ``obj`` that strict JSON can carry: non-finite floats encoded, keys made strings,
    tuples made lists, anything else (and anything nested deeper than 20) as its ``repr``."""
    if depth > 20:
        return repr(obj)
    if obj is None or isinstance(obj, (bool, str, int)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else encode_float(obj)
    if isinstance(obj, dict):
        return {str(k): json_safe(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v, depth + 1) for v in obj]
    return repr(obj)


# -- metric keys -----------------------------------------------------------------------------
class KEYS:
    """The metric keys fitscope records and reads. Values are the wire names."""

    TRAIN_LOSS: Final = "train/loss"
    TRAIN_ACCURACY: Final = "train/accuracy"
    TRAIN_LABELS: Final = "train/labels"
    TRAIN_STEP_SKIPPED: Final = "train/step_skipped"
    VAL_LOSS: Final = "val/loss"
    VAL_ACCURACY: Final = "val/accuracy"
    VAL_CONFIDENCE: Final = "val/confidence"
    VAL_LABELS: Final = "val/labels"
    GRAD_NORM_TOTAL: Final = "grad_norm/total"
    PARAM_NORM_TOTAL: Final = "param_norm/total"
    UPDATE_RATIO_TOTAL: Final = "update_ratio/total"
    LR_FIRST: Final = "lr/0"
    TIME_WALL: Final = "time/wall"
    EPOCH: Final = "epoch"
    AMP_SCALE: Final = "amp/scale"
    NO_LOSS_CAPTURED: Final = "fitscope/no_loss_captured"  # 1.0 at the step the hook noticed


class PREFIXES:
    """Families of keys: ``<prefix><layer or group>`` and ``<split>/<metric>``."""

    TRAIN: Final = "train/"
    VAL: Final = "val/"
    TEST: Final = "test/"
    TRAIN_EVAL: Final = "train_eval/"
    GRAD_NORM: Final = "grad_norm/"
    PARAM_NORM: Final = "param_norm/"
    UPDATE_RATIO: Final = "update_ratio/"
    LR: Final = "lr/"
    WD: Final = "wd/"  # weight decay per parameter group


# the default name of an evaluation pass's split (``val/loss``); ``run.split(name)`` names others
SPLIT_VAL: Final = "val"


def split_key(split: str, metric: str) -> str:
    """The key of ``metric`` (``loss``, ``accuracy``, ...) in evaluation split ``split``."""
    return f"{split}/{metric}"


# -- endpoints -------------------------------------------------------------------------------
API_PREFIX: Final = "/api/v1"


class paths:  # noqa: N801 - a namespace of path builders, read as ``paths.batches(run_id)``
    """The API's paths, as a client calls them."""

    HEALTH: Final = f"{API_PREFIX}/health"
    RUNS: Final = f"{API_PREFIX}/runs"
    EVENTS: Final = f"{API_PREFIX}/events/runs"
    PROJECTS: Final = f"{API_PREFIX}/projects"
    ALL_KEYS: Final = f"{API_PREFIX}/keys"  # the scalar keys of any run

    @staticmethod
    def run(run_id: str) -> str:
        return f"{API_PREFIX}/runs/{run_id}"

    @staticmethod
    def batches(run_id: str) -> str:
        return f"{API_PREFIX}/runs/{run_id}/batches"

    @staticmethod
    def finish(run_id: str) -> str:
        return f"{API_PREFIX}/runs/{run_id}/finish"

    @staticmethod
    def heartbeat(run_id: str) -> str:
        return f"{API_PREFIX}/runs/{run_id}/heartbeat"

    @staticmethod
    def alerts(run_id: str) -> str:
        return f"{API_PREFIX}/runs/{run_id}/alerts"

    @staticmethod
    def series(run_id: str) -> str:
        return f"{API_PREFIX}/runs/{run_id}/series"

    @staticmethod
    def histograms(run_id: str) -> str:
        return f"{API_PREFIX}/runs/{run_id}/histograms"

    @staticmethod
    def keys(run_id: str) -> str:
        return f"{API_PREFIX}/runs/{run_id}/keys"

    @staticmethod
    def export(run_id: str) -> str:
        return f"{API_PREFIX}/runs/{run_id}/export"

    @staticmethod
    def run_events(run_id: str) -> str:
        return f"{API_PREFIX}/runs/{run_id}/events"


# -- messages --------------------------------------------------------------------------------
# A run is told to the server in three kinds of request: create it (``POST paths.RUNS``), send
# its points (``POST paths.batches(id)``, any number, each with an id so a resent batch is
# stored once), finish it (``POST paths.finish(id)``). The bodies are built here, as plain dicts;
# floats in them must already be wire-encoded (``encode_float``, ``json_safe``).


def create_run_body(
    run_id: str,
    project: str,
    name: str,
    config: dict[str, Any],
    *,
    host: str | None = None,
    argv: list[str] | None = None,
    tags: list[str] | None = None,
) -> dict[str, Any]:
    """The body that creates run ``run_id`` (creating it again is a no-op)."""
    body: dict[str, Any] = {"id": run_id, "project": project, "name": name, "config": config}
    if host is not None:
        body["host"] = host
    if argv is not None:
        body["argv"] = argv
    if tags is not None:
        body["tags"] = tags
    return body


def batch_body(batch_id: str, scalars: dict[str, Any], histograms: list[dict]) -> dict[str, Any]:
    """A batch of points: ``scalars`` is ``{key: {"steps": [...], "values": [...]}}``."""
    return {"batch_id": batch_id, "scalars": scalars, "histograms": histograms}


def finish_body(status: str = "finished", error: dict[str, str] | None = None) -> dict[str, Any]:
    """The body that ends a run: ``"finished"``, or ``"crashed"`` with the ``error``
    (``{"type": ..., "message": ...}``) that ended it."""
    body: dict[str, Any] = {"status": status}
    if error is not None:
        body["error"] = error
    return body


def config_patch_body(fitscope: dict[str, Any]) -> dict[str, Any]:
    """The body that replaces the ``fitscope`` block of a run's config (what the hook learned)."""
    return {"config": {"fitscope": fitscope}}
