"""The application factory: ``create_app(settings)`` builds everything; importing does nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match

import fitscope

from . import live, migrate
from .api import alerts, catalog, events, export, health, ingest, runs, series
from .api.deps import ERROR_RESPONSES
from .db import Database, DatabaseBusy
from .decode import BadBatch, everything_refused
from .diagnosis import Diagnoser, Webhook
from .login import mount_login
from .middleware import BodyMiddleware, ProtocolMiddleware
from .schemas import BatchIn
from .security import SecurityMiddleware, allowed_hosts, configured_hosts
from .settings import Settings
from .storage import RunNotFound, SeriesKindConflict
from .throttle import Throttle
from .web import mount_web


def create_app(settings: Settings | None = None, *, upgrade: bool = True) -> FastAPI:
    """Build the fitscope app. With ``upgrade`` the schema is migrated to head at start-up;
    without it, start-up fails with an actionable error unless it already is."""
    settings = settings or Settings()
    db = Database(settings.database_url(), busy_timeout=settings.db_busy_timeout)
    hub = live.Hub()
    webhook = (
        Webhook(settings.webhook_url, public_url=settings.public_url)
        if settings.webhook_url
        else None
    )
    diagnoser = Diagnoser(settings.rules, enabled=settings.diagnosis, webhook=webhook)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if upgrade:
            migrate.upgrade(db.engine)
        else:
            migrate.check_at_head(db.engine)
        async with live.running(db, settings, hub):
            yield
        if webhook is not None:
            webhook.close()
        db.dispose()

    app = FastAPI(
        title="fitscope",
        version=fitscope.__version__,
        description="Training diagnostics for PyTorch: ingest from the hook, read API for the dashboard.",
        lifespan=lifespan,
        # the interactive docs load scripts from a CDN; the schema stays at /openapi.json
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.db = db
    app.state.hub = hub
    app.state.diagnoser = diagnoser
    app.state.throttle = throttle = Throttle()
    for module in (health, runs, catalog, ingest, series, export, alerts, events):
        app.include_router(module.router, responses=ERROR_RESPONSES)
    _add_error_handlers(app)
    mount_login(app, settings.token)
    mount_web(app)
    # added last = outermost: security headers and auth wrap everything, then the protocol
    # version check (before any body is read), then the body limit
    app.add_middleware(BodyMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(ProtocolMiddleware)
    app.add_middleware(
        SecurityMiddleware,
        token=settings.token,
        allowed=allowed_hosts(settings.allowed_hosts, settings.public_url, settings.token),
        throttle=throttle,
        origin_hosts=configured_hosts(settings.allowed_hosts, settings.public_url),
    )
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def app_from_env() -> FastAPI:
    """The app as configured by ``FITSCOPE_*`` variables: what each worker of
    ``fitscope serve --workers N`` runs (uvicorn imports it as a factory)."""
    settings = Settings()
    return create_app(settings, upgrade=settings.upgrade_on_start)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RunNotFound)
    async def _not_found(_: Request, exc: RunNotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(BadBatch)
    async def _bad_batch(_: Request, exc: BadBatch) -> JSONResponse:
        return _batch_error(exc)

    @app.exception_handler(SeriesKindConflict)
    async def _kind_conflict(_: Request, exc: SeriesKindConflict) -> JSONResponse:
        # answered as a batch in which nothing is acceptable: a 422 naming every refused key
        return _batch_error(everything_refused(exc.refused))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> Response:
        # the echoed input may hold what cannot be sent as UTF-8 (a lone surrogate) or be
        # huge: escape it, and echo only short inputs
        errors = []
        for err in exc.errors():
            err = dict(err)
            if len(repr(err.get("input"))) > 200:
                err.pop("input", None)
            errors.append(err)
        body = json.dumps({"detail": jsonable_encoder(errors)}, ensure_ascii=True, default=str)
        return Response(body, status_code=422, media_type="application/json")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # one path may be served by several routes (GET, PATCH, DELETE): allow them all
            headers["Allow"] = ", ".join(sorted(_allowed_methods(app, request.scope)))
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(DatabaseBusy)
    async def _busy(_: Request, exc: DatabaseBusy) -> JSONResponse:
        return JSONResponse(
            {"detail": f"database busy, retry: {exc}"},
            status_code=503,
            headers={"Retry-After": "1"},
        )


def _batch_error(exc: BadBatch) -> JSONResponse:
    body: dict = {"detail": str(exc)}
    if exc.refused:
        body["refused"] = exc.refused
    return JSONResponse(body, status_code=exc.status)


def _allowed_methods(app: FastAPI, scope: Any) -> set[str]:
    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches(scope)
        if match != Match.NONE and isinstance(route, BaseRoute):
            methods |= set(getattr(route, "methods", None) or ())
    return methods


def _openapi(app: FastAPI) -> dict:
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        # the batch body is parsed by hand for speed; publish its schema all the same
        body = BatchIn.model_json_schema(ref_template="#/components/schemas/{model}")
        comps = schema.setdefault("components", {}).setdefault("schemas", {})
        comps.update(body.pop("$defs", {}))
        comps["BatchIn"] = body
        app.openapi_schema = schema
    return app.openapi_schema
