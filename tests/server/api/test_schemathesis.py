"""Property-based fuzzing of the whole API from its own OpenAPI schema: no 5xx, no schema violations."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402


@pytest.fixture
def api_app(tmp_path):
    from fastapi.testclient import TestClient

    from fitscope_server import Settings, create_app

    app = create_app(Settings(db_url=f"sqlite:///{tmp_path / 'fuzz.db'}", dir=tmp_path))
    with TestClient(app) as c:  # runs the lifespan: migrations
        c.post("/api/v1/runs", json={"id": "seed", "name": "seed"})
        c.post(
            "/api/v1/runs/seed/batches",
            json={"batch_id": "b", "scalars": {"k": {"steps": [1], "values": [1.0]}}},
        )
        yield schemathesis.openapi.from_asgi("/openapi.json", app)


# The live streams (tag "live") never end, and the fuzzer can only judge a whole response:
# each would run until the stream's keepalive loop is cut off. tests/test_live_sse.py covers
# them (events, resume, 404 for an unknown run).
schema = schemathesis.pytest.from_fixture("api_app").exclude(tag="live")


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case):
    excluded = []
    if case.path.endswith("/batches"):
        # JSON Schema cannot say "as many values as steps" or "one more edge than counts"; the
        # decoder rejects such schema-valid batches with a 422 that says so, which is right
        excluded.append(schemathesis.checks.positive_data_acceptance)
    if case.path in ("/api/v1/runs", "/api/v1/runs/{run_id}") and case.method in ("POST", "PATCH"):
        # nor "no NUL or lone surrogate anywhere in the config, nested at most 64 levels": such
        # schema-valid runs are refused with a 422 that says why (they could not be stored)
        excluded.append(schemathesis.checks.positive_data_acceptance)
    if any("\x00" in str(v) for v in (case.query or {}).values()):
        # a NUL in a query parameter is refused with a 400 that says so (PostgreSQL text
        # cannot hold it), whatever the parameter's schema
        excluded.append(schemathesis.checks.positive_data_acceptance)
    case.call_and_validate(excluded_checks=excluded)
