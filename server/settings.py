"""Server settings: the one place the server reads its environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FITSCOPE_", extra="ignore")

    dir: Path = Field(default=Path("~/.fitscope"), description="local data folder (FITSCOPE_DIR)")
    db_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL (FITSCOPE_DB_URL); default: an SQLite file in FITSCOPE_DIR",
    )
    heartbeat_timeout: float = Field(
        default=60.0,
        description="seconds without a heartbeat before a running run is marked crashed",
    )
    token: str | None = Field(
        default=None,
        description="access token (FITSCOPE_TOKEN): when set, "
        "every read and write needs it; never logged",
    )
    db_busy_timeout: float = Field(
        default=5.0,
        gt=0,
        description="seconds a write waits for a locked SQLite database before answering "
        "503 + Retry-After (the hook then retries); keep it below the hook's 10 s timeout",
    )
    allowed_hosts: str | None = Field(
        default=None,
        description="FITSCOPE_ALLOWED_HOSTS: comma-separated host names the server answers to "
        "besides IP addresses, localhost and FITSCOPE_PUBLIC_URL's host ('*': any). Unset: "
        "only those without a token, any with one. Guards against DNS rebinding",
    )
    max_streams: int = Field(
        default=2000,
        ge=0,
        description="FITSCOPE_MAX_STREAMS: open live streams per server process; more are "
        "answered 503 + Retry-After",
    )
    max_body_bytes: int = Field(
        default=32 * 1024 * 1024, description="largest accepted request body"
    )
    diagnosis: bool = Field(
        default=True, description="run the diagnosis rules (FITSCOPE_DIAGNOSIS)"
    )
    rules: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "server-wide rule overrides as JSON (FITSCOPE_RULES), e.g. "
            '{"plateau": false, "overfitting": {"gl_warn": 0.1}}; a run\'s own rules= win'
        ),
    )
    webhook_url: str | None = Field(
        default=None,
        description="POST new warning/critical alerts here as Slack-compatible JSON (FITSCOPE_WEBHOOK_URL)",
    )
    public_url: str | None = Field(
        default=None, description="the dashboard's address, for links in notifications"
    )
    crash_check_s: float = Field(
        default=5.0,
        gt=0,
        description="how often the server looks for runs without heartbeat (more often when a "
        "quarter of heartbeat_timeout is shorter)",
    )
    live_poll_s: float = Field(
        default=0.5,
        gt=0,
        description="SQLite: how often each server process looks for changes made by other "
        "server processes, for all its live streams at once (changes in the same process "
        "wake them at once)",
    )
    event_retention_s: float = Field(
        default=3600.0, gt=0, description="how long live-stream events are kept for resuming"
    )
    upgrade_on_start: bool = Field(
        default=True,
        description="migrate the schema at start-up (False: refuse an out-of-date schema)",
    )

    def database_url(self) -> str:
        if self.db_url:
            return self.db_url
        return f"sqlite:///{self.data_dir() / 'fitscope.db'}"

    def data_dir(self) -> Path:
        return self.dir.expanduser()
