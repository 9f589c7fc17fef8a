"""The Alembic history is the schema: up, down, and in agreement with the ORM models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from fitscope_server import migrate
from fitscope_server.db import make_engine
from fitscope_server.models import Base

TABLES = {
    "runs",
    "series",
    "point_blocks",
    "histograms",
    "batches",
    "alerts",
    "events",
    "diagnosis_state",
}


def test_upgrade_and_downgrade_on_an_empty_database(db_url):
    engine = make_engine(db_url)
    try:
        migrate.upgrade(engine)
        assert TABLES <= set(inspect(engine).get_table_names())
        assert migrate.current_revision(engine) == migrate.head_revision()
        migrate.check_at_head(engine)
        migrate.downgrade(engine, "base")
        assert not TABLES & set(inspect(engine).get_table_names())
        assert migrate.current_revision(engine) is None
        migrate.upgrade(engine)
        assert TABLES <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_orm_models_match_the_migrated_schema(db_url):
    engine = make_engine(db_url)
    try:
        migrate.upgrade(engine)
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
        assert diff == []
    finally:
        engine.dispose()


def test_server_refuses_an_outdated_schema_with_an_actionable_error(sqlite_url, tmp_path):
    import pytest
    from fastapi.testclient import TestClient

    from fitscope_server import Settings, create_app

    app = create_app(Settings(db_url=sqlite_url, dir=tmp_path), upgrade=False)
    with pytest.raises(migrate.SchemaOutOfDate, match="fitscope db upgrade"), TestClient(app):
        pass
