"""The FastAPI application: routes, FHIR error handling, and the relay's life cycle.

`create_app` takes the evaluation dispatcher from its caller (the CLI bootstrap or a test):
with a broker the relay publishes Celery tasks by name; embedded, it runs them in-process.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

import service.subscriptions  # noqa: F401 - serves the Subscription type
from service import __version__
from service.api import fhir_routes, ops_routes
from service.api.responses import fhir_response
from service.config import Settings
from service.errors import FHIRError, Issue, operation_outcome
from service.relay import CeleryDispatcher, Dispatcher, Relay
from service.store.db import session_factory
from service.store.migrate import upgrade
from service.web import routes as web_routes

log = logging.getLogger(__name__)

_HTTP_CODES = {401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported"}


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FHIRError)
    async def _fhir_error(_request: Request, exc: FHIRError) -> Response:
        return fhir_response(exc.operation_outcome(), exc.status, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> Response:
        issues = [
            Issue("error", "invalid", f"{'.'.join(map(str, e['loc']))}: {e['msg']}")
            for e in exc.errors()
        ]
        return fhir_response(operation_outcome(issues), 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> Response:
        code = _HTTP_CODES.get(exc.status_code, "processing")
        issue = Issue("error", code, str(exc.detail))
        return fhir_response(operation_outcome([issue]), exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # Never echo the exception text: it may quote patient data.
        log.error(
            "unexpected %s on %s %s",
            type(exc).__name__,
            request.method,
            request.url.path,
            exc_info=exc,
        )
        issue = Issue("fatal", "exception", "Internal server error; the request was not applied")
        return fhir_response(operation_outcome([issue]), 500)


def create_app(
    settings: Settings,
    *,
    dispatcher: Dispatcher | None = None,
    start_relay: bool = True,
    migrate: bool = True,
) -> FastAPI:
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        settings.ensure_data_dir()
    if migrate:
        upgrade(url)
    factory = session_factory(url)
    if dispatcher is None and settings.broker_url:
        dispatcher = CeleryDispatcher(settings.broker_url, settings.broker_visibility_timeout)
    relay = (
        Relay(
            factory,
            dispatcher,
            interval=settings.relay_interval_seconds,
            redispatch_after=settings.redispatch_after_seconds,
        )
        if dispatcher is not None
        else None
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if relay is not None and start_relay:
            relay.start()
        try:
            yield
        finally:
            if relay is not None:
                relay.stop()

    app = FastAPI(
        title="fhir-alerts",
        version=__version__,
        description="FHIR R4 bone-metastasis surveillance for breast-cancer survivors",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.session_factory = factory
    app.state.jwt_secret = settings.signing_secret()
    app.state.relay = relay
    _install_error_handlers(app)
    app.include_router(ops_routes.router)
    app.include_router(fhir_routes.router)
    app.include_router(web_routes.router)
    return app
