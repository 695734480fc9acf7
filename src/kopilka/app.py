"""The FastAPI application: routers, problem+json errors, metrics, the database engine."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.telemetry import TelemetryConfig
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.exceptions import HTTPException as StarletteHTTPException

from kopilka import __version__
from kopilka.api import routers
from kopilka.apikeys.revocations import RevocationWatch
from kopilka.apikeys.service import api_key_service
from kopilka.config import Settings, get_settings
from kopilka.db import make_engine
from kopilka.errors import KopilkaError, TooManyRequests
from kopilka.http import CHALLENGE, HOT_ROUTES, PROBLEM
from kopilka.http import problem as _problem
from kopilka.kit.memory import freeze_startup_objects
from kopilka.kit.ratelimit import PerMinute
from kopilka.kit.types import error_location
from kopilka.system.docs import install_docs
from kopilka.system.guard import RequestGuard
from kopilka.system.metrics import MetricsMiddleware
from kopilka.system.openapi import install_openapi
from kopilka.web.errors import error_page, is_page
from kopilka.web.pages import install_pages

logger = logging.getLogger("kopilka")


def _headers_of(exc: KopilkaError) -> dict[str, str] | None:
    """A 401's challenge; when a refused client may try again (429)."""
    if exc.status == 401:
        return CHALLENGE
    if isinstance(exc, TooManyRequests):
        return {"Retry-After": str(exc.retry_after)}
    return None


def _field_of(location: tuple[Any, ...]) -> str:
    """``body.lines.0.sku`` → ``lines.0.sku``; parameters keep their place (``query.limit``)."""
    parts = [str(p) for p in location]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


def _telemetry(enabled: bool) -> TelemetryConfig:
    return {"tracing": enabled, "metrics": enabled, "logs": enabled}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(KopilkaError)
    async def _domain_error(request: Request, exc: KopilkaError) -> Response:
        if is_page(request):
            page = error_page(request, exc.status, exc.detail)
            page.headers.update(_headers_of(exc) or {})
            return page
        return JSONResponse(
            exc.problem(request.url.path),
            status_code=exc.status,
            media_type=PROBLEM,
            headers=_headers_of(exc),
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        if is_page(request):
            if all(error_location(e)[:1] == ("path",) for e in exc.errors()):
                # /console/members/not-an-id: a page that does not exist.
                return error_page(request, 404, "Not Found")
            return error_page(request, 422, "; ".join(str(e["msg"]) for e in exc.errors()[:3]))
        errors = [
            {
                # A body that is not JSON at all: the error is the body's, not a position's.
                "field": "body" if e["type"] == "json_invalid" else _field_of(error_location(e)),
                "message": e["msg"],
                "code": e["type"],
            }
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return _problem(422, "Invalid input", detail, request.url.path, errors=errors)

    @app.exception_handler(DBAPIError)
    async def _database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        # Input PostgreSQL cannot store (the NUL character) is refused by the request guard,
        # naming the field, before it gets here.
        logger.exception("database error on %s", request.url.path, exc_info=exc)
        return _problem(500, "Internal error", "the database failed", request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if is_page(request):
            page = error_page(request, exc.status_code, str(exc.detail))
            page.headers.update(exc.headers or {})
            return page
        response = _problem(exc.status_code, str(exc.detail), str(exc.detail), request.url.path)
        # 405 carries ``Allow``; keep every header the exception was raised with.
        response.headers.update(exc.headers or {})
        return response


def create_app(settings: Settings | None = None, engine: AsyncEngine | None = None) -> FastAPI:
    settings = settings or get_settings()
    api_key_service.cache_seconds = settings.api_key_cache_seconds

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_engine = engine is None
        app.state.engine = engine or make_engine(
            settings.database_url, pool_size=settings.db_pool_size
        )
        freeze_startup_objects()
        # On PostgreSQL, revocations arrive by notification: no key look-up per request.
        revocations = RevocationWatch(app.state.engine)
        revocations.start()
        app.state.revocations = revocations
        try:
            yield
        finally:
            await revocations.stop()
            if own_engine:
                await app.state.engine.dispose()

    app = FastAPI(
        title="Kopilka",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,  # served by install_docs, from local files
        redoc_url=None,
        description="Loyalty-program engine: members, points ledger, purchases and returns.",
        # Checking for OpenTelemetry providers costs ~4 % of a purchase's server time; it is
        # on only when asked for. Prometheus metrics at /metrics are always on.
        telemetry=_telemetry(settings.opentelemetry),
    )
    if engine is not None:
        app.state.engine = engine
    app.state.settings = settings
    app.state.sign_in_limit = PerMinute(settings.sign_in_per_minute)
    install_error_handlers(app)
    install_docs(app)
    for router in routers:
        app.include_router(router)
    install_pages(app)
    # The till's calls first, served without FastAPI's per-request machinery.
    app.router.routes[0:0] = HOT_ROUTES
    install_openapi(app)
    # The last added runs first: metrics see every answer, the guard's refusals included.
    app.add_middleware(RequestGuard, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware)
    return app
