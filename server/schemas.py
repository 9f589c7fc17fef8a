"""API schemas (``…In`` for requests, ``…Out`` for answers), separate from the ORM models.

Float arrays in answers use the wire encoding: non-finite values are the strings
``"NaN"``, ``"Infinity"`` and ``"-Infinity"``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

RUN_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
WireFloat = float | Literal["NaN", "Infinity", "-Infinity"]


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
        default_factory=dict, description="hyperparameters and captured settings"
    )
    host: str | None = Field(default=None, max_length=200)
    argv: list[str] | None = Field(default=None, max_length=50)
    tags: list[Tag] = Field(default_factory=list, max_length=32, description="labels of the run")


class RunPatchIn(BaseModel):
    """Every field is optional; the ones given are changed."""

    config: dict[str, Any] | None = Field(
        default=None, description="merged into the run's config (top-level keys replaced)"
    )
    name: str | None = Field(default=None, min_length=1, max_length=200, description="rename")
    tags: list[Tag] | None = Field(
        default=None, max_length=32, description="the run's tags (replaces them)"
    )
    notes: str | None = Field(default=None, max_length=10_000, description="free text")


class FinishIn(BaseModel):
    status: Literal["finished", "crashed"] = "finished"


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
    created_at: datetime
    updated_at: datetime


class HealthOut(BaseModel):
    status: Literal["ok"]
    database: str
    version: str
