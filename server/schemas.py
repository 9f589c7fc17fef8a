"""API schemas (``…In`` for requests, ``…Out`` for answers), separate from the ORM models.

Float arrays in answers use the wire encoding of :mod:`fitscope.protocol`: non-finite values
are its strings (``WireFloat``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, field_validator

from fitscope.protocol import WireFloat, encode_float

RUN_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
MAX_CONFIG_DEPTH = 64  # JSON encoders (orjson, pydantic) stop at a few hundred levels
MAX_CONFIG_BYTES = 1024 * 1024


def clean_text(v: str, where: str) -> str:
    """Refuse what a database cannot store or a JSON encoder cannot send back: NUL (PostgreSQL
    text) and lone surrogates (not UTF-8)."""
    i = v.find("\x00")
    if i >= 0:
        raise ValueError(f"{where} contains a NUL character at position {i}")
    try:
        v.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"{where} contains a lone surrogate U+{ord(v[exc.start]):04X} at position {exc.start}"
        ) from None
    return v


def clean_config(obj: Any, where: str = "config", depth: int = 0) -> Any:
    """A config safe to store and to send back: nested at most ``MAX_CONFIG_DEPTH`` levels, no
    NUL or lone surrogate in any key or string, non-finite floats as their wire strings."""
    if depth > MAX_CONFIG_DEPTH:
        raise ValueError(f"{where}: nested deeper than {MAX_CONFIG_DEPTH} levels")
    if isinstance(obj, dict):
        return {
            clean_text(str(k), f"{where}: key {str(k)[:40]!r}"): clean_config(
                v, f"{where}.{str(k)[:40]}", depth + 1
            )
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [clean_config(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(obj)]
    if isinstance(obj, str):
        return clean_text(obj, where)
    if isinstance(obj, float):
        return encode_float(obj)
    return obj


def checked_config(config: dict[str, Any], what: str = "config") -> dict[str, Any]:
    cleaned = clean_config(config, what)
    size = len(json.dumps(cleaned, ensure_ascii=True))
    if size > MAX_CONFIG_BYTES:
        raise ValueError(f"{what} is {size} bytes as JSON; at most {MAX_CONFIG_BYTES} are allowed")
    return cleaned


Tag = Annotated[
    str, StringConstraints(max_length=64, pattern=r"^[^\x00-\x1f]*$")
]  # trimmed; blank ones dropped


class RunIn(BaseModel):
    id: str = Field(
        pattern=RUN_ID_PATTERN, description="client-chosen id; creating it again is a no-op"
    )
    project: str = Field(default="default", min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=200)
    config: dict[str, Any] = Field(
        default_factory=dict,
        description=f"hyperparameters and captured settings: nested at most {MAX_CONFIG_DEPTH} "
        f"levels, at most {MAX_CONFIG_BYTES} bytes as JSON, no NUL or lone surrogate in any "
        "string (name, project, host and argv likewise); else 422 and nothing is stored",
    )
    host: str | None = Field(default=None, max_length=200)
    argv: list[str] | None = Field(default=None, max_length=50)
    tags: list[Tag] = Field(default_factory=list, max_length=32, description="labels of the run")

    @field_validator("project", "name", "host")
    @classmethod
    def _text(cls, v: str | None, info: Any) -> str | None:
        return None if v is None else clean_text(v, info.field_name)

    @field_validator("argv")
    @classmethod
    def _argv(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else [clean_text(a, f"argv[{i}]") for i, a in enumerate(v)]

    @field_validator("config")
    @classmethod
    def _config(cls, v: dict[str, Any]) -> dict[str, Any]:
        return checked_config(v)


class RunPatchIn(BaseModel):
    """Every field is optional; the ones given are changed."""

    config: dict[str, Any] | None = Field(
        default=None,
        description="merged into the run's config (top-level keys replaced); nested at most "
        f"{MAX_CONFIG_DEPTH} levels, no NUL or lone surrogate, at most {MAX_CONFIG_BYTES} bytes "
        "as JSON once merged (else 422, and nothing is changed)",
    )
    name: str | None = Field(default=None, min_length=1, max_length=200, description="rename")
    tags: list[Tag] | None = Field(
        default=None, max_length=32, description="the run's tags (replaces them)"
    )
    notes: str | None = Field(default=None, max_length=10_000, description="free text")

    @field_validator("config")
    @classmethod
    def _config(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if v is None else checked_config(v)

    @field_validator("name", "notes")
    @classmethod
    def _text(cls, v: str | None, info: Any) -> str | None:
        return None if v is None else clean_text(v, info.field_name)

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else [clean_text(t, f"tags[{i}]") for i, t in enumerate(v)]


class ErrorIn(BaseModel):
    type: str = Field(max_length=200, description="the exception's type, e.g. ValueError")
    message: str = Field(max_length=4000, description="the exception's message")

    @field_validator("type", "message")
    @classmethod
    def _text(cls, v: str, info: Any) -> str:
        return clean_text(v, f"error.{info.field_name}")


class FinishIn(BaseModel):
    status: Literal["finished", "crashed"] = "finished"
    error: ErrorIn | None = Field(
        default=None, description="why the run ended, for a crashed run (optional)"
    )


class RunOut(BaseModel):
    id: str
    project: str
    name: str
    status: Literal["running", "finished", "crashed"]
    created_at: datetime
    updated_at: datetime
    heartbeat_at: datetime
    finished_at: datetime | None = None
    tags: list[str] = Field(default_factory=list)
    notes: str = ""
    last_step: int | None = Field(
        default=None, description="the highest step of any of its series (null: no points yet)"
    )
    error: dict[str, str] | None = Field(
        default=None,
        description="{type, message} sent by the client's finish (an uncaught exception); "
        "null otherwise",
    )


class RunDetailOut(RunOut):
    config: dict[str, Any]
    started_at: datetime = Field(
        description="when training started, by the training process's own clock "
        "(`created_at` for a hook that does not say)"
    )
    last_time: datetime | None = Field(
        default=None,
        description="the training process's clock at its last recorded flush (`time/wall`)",
    )


class RunListOut(RunOut):
    """A row of the runs table."""

    health: Literal["ok", "info", "warning", "critical"] = Field(
        description="severity of its worst open alert; ok when none is open"
    )
    alert_rule: str | None = Field(default=None, description="the rule of that alert")
    open_alerts: int = 0
    duration_s: float | None = Field(
        default=None, description="seconds from start to finish (running: to now)"
    )
    metrics: dict[str, WireFloat | None] = Field(
        default_factory=dict, description="the requested metric columns, by their AGG:KEY"
    )


MetricKey = Annotated[
    str, StringConstraints(min_length=1, max_length=250, pattern=r"^[^\x00-\x1f]+$")
]
Step = Annotated[int, Field(ge=0, le=2**62)]


class ScalarSeriesIn(BaseModel):
    steps: list[Step] = Field(description="as many steps as values")
    values: list[WireFloat]


class HistogramIn(BaseModel):
    key: MetricKey
    step: Step
    edges: list[WireFloat] = Field(
        min_length=2, max_length=10_001, description="one more than counts"
    )
    counts: list[WireFloat] = Field(min_length=1, max_length=10_000)
    correct: list[WireFloat] | None = Field(
        default=None, description="per bin: correct predictions"
    )
    conf_sum: list[WireFloat] | None = Field(
        default=None, description="per bin: sum of confidences"
    )


class BatchIn(BaseModel):
    """A batch of points. May be sent gzip-compressed (``Content-Encoding: gzip``)."""

    batch_id: str = Field(
        pattern=r"^[A-Za-z0-9_.:-]{1,64}$", description="a resent batch is stored once"
    )
    scalars: dict[MetricKey, ScalarSeriesIn] = Field(default_factory=dict)
    histograms: list[HistogramIn] = Field(default_factory=list)


class AlertBrief(BaseModel):
    id: int
    rule: str
    severity: str
    step: int
    message: str


class BatchOut(BaseModel):
    stored: int = Field(description="points stored from this batch (0 for a duplicate)")
    duplicate: bool
    refused: dict[str, str] = Field(
        default_factory=dict,
        description="keys left out of this batch, each with the reason; the rest was stored",
    )
    alerts: list[AlertBrief] = Field(
        default_factory=list, description="open warnings and criticals of the run"
    )


class KeyOut(BaseModel):
    key: str
    kind: Literal["scalar", "histogram"]
    count: int


class SeriesOut(BaseModel):
    key: str
    steps: list[int]
    values: list[WireFloat]
    min: list[WireFloat] | None = Field(default=None, description="per point, when reduced")
    max: list[WireFloat] | None = Field(default=None, description="per point, when reduced")
    reduced: bool = False
    total: int = Field(description="points in the requested range before reduction")
    last_step: int | None = Field(
        default=None, description="the highest step in the range; null when it is empty"
    )
    time: list[float] | None = Field(
        default=None,
        description="with `with_time`: Unix seconds at each step (from `time/wall`)",
    )


class HistogramOut(BaseModel):
    step: int
    edges: list[WireFloat]
    counts: list[WireFloat]
    correct: list[WireFloat] | None = None
    conf_sum: list[WireFloat] | None = None


class HistogramsOut(BaseModel):
    key: str
    histograms: list[HistogramOut]


class AlertOut(BaseModel):
    id: int
    rule: str
    severity: Literal["info", "warning", "critical"]
    status: Literal["open", "resolved"]
    step: int = Field(description="the training step at which it was raised")
    onset_step: int | None = None
    message: str
    remedy: str
    evidence: dict[str, Any]
    evidence_labels: dict[str, str] = Field(
        default_factory=dict, description="a human label for each evidence key"
    )
    created_at: datetime
    updated_at: datetime


class HealthOut(BaseModel):
    status: Literal["ok"]
    database: str
    version: str
