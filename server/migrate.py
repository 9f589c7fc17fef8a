"""Running the Alembic history, and checking that a database is at its head."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from fitscope_migrations import SCRIPT_LOCATION


class SchemaOutOfDate(RuntimeError):
    pass


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    cfg.attributes["engine"] = engine
    return cfg


def _with_connection(engine: Engine, fn, revision: str) -> None:  # type: ignore[no-untyped-def]
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        fn(cfg, revision)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` (default: the newest)."""
    _with_connection(engine, command.upgrade, revision)


def downgrade(engine: Engine, revision: str) -> None:
    _with_connection(engine, command.downgrade, revision)


def head_revision() -> str:
    script = ScriptDirectory(SCRIPT_LOCATION)
    head = script.get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def check_at_head(engine: Engine) -> None:
    """Raise an actionable error when the database schema is not at the newest revision."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise SchemaOutOfDate(
            f"database schema is at revision {current or 'none'}, this fitscope needs {head}: "
            "run `fitscope db upgrade` (or start `fitscope serve`, which upgrades by default)"
        )
