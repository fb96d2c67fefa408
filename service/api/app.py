"""The FastAPI application: routes, FHIR error handling, and the relay's life cycle.

`create_app` takes the evaluation dispatcher and the dry run's evaluator from its caller (the
composition root `workers.embedded.build_app`, or a test): with a broker the relay publishes
Celery tasks by name; embedded, it runs them in-process. The service never imports worker code.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

import service.subscriptions  # noqa: F401 - serves the Subscription type
from service import __version__
from service.api import auth_routes, fhir_routes, ops_routes, subscription_ops, unavailable
from service.api import metrics as metrics_api
from service.api.guard import RequestGuard
from service.api.openapi import install_openapi
from service.api.responses import fhir_response
from service.cds import routes as cds_routes
from service.config import Settings
from service.dry_run import Evaluator
from service.errors import FHIRError, Issue, operation_outcome
from service.fhir import registry, validate
from service.interactions import fhir_error
from service.relay import CeleryDispatcher, Dispatcher, Relay
from service.store import pg_listen
from service.store.db import session_factory
from service.store.errors import StoreError
from service.store.migrate import upgrade
from service.subscriptions import hook as subscription_hook
from service.web import routes as web_routes

log = logging.getLogger(__name__)

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
_HTTP_CODES = {401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported"}


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FHIRError)
    async def _fhir_error(_request: Request, exc: FHIRError) -> Response:
        return fhir_response(exc.operation_outcome(), exc.status, exc.headers)

    @app.exception_handler(StoreError)
    async def _store_error(_request: Request, exc: StoreError) -> Response:
        # The store's own refusals (stale If-Match, lost create race), mapped once
        # (interactions.fhir_error); interactions already translate what they raise.
        err = fhir_error(exc)
        return fhir_response(err.operation_outcome(), err.status, err.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> Response:
        issues = [
            Issue("error", "invalid", f"{'.'.join(map(str, e['loc']))}: {e['msg']}")
            for e in exc.errors()
        ]
        return fhir_response(operation_outcome(issues), 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = _HTTP_CODES.get(exc.status_code, "processing")
        issue = Issue("error", code, str(exc.detail))
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request)
        return fhir_response(operation_outcome([issue]), exc.status_code, headers)

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> Response:
        # Two writers created the same resource at the same moment: the loser's transaction
        # was rolled back whole; the client may retry.
        log.warning("write conflict on %s %s", request.method, request.url.path)
        issue = Issue(
            "error", "conflict", "A concurrent write changed this resource; nothing was stored"
        )
        return fhir_response(operation_outcome([issue]), 409)

    # Any other exception is turned into a 500 by RequestGuard (service/api/guard.py), which
    # logs its type and the request id only and never hands it on to the server.


def _allowed_methods(request: Request) -> str:
    """`Allow` of a 405: every method some route serves on this path (Starlette names only
    the first route whose path matched)."""
    routes = request.app.router.routes
    return ", ".join(
        method
        for method in _METHODS
        if any(r.matches({**request.scope, "method": method})[0] == Match.FULL for r in routes)
    )


def create_app(
    settings: Settings,
    *,
    dispatcher: Dispatcher | None = None,
    evaluator: Evaluator | None = None,
    start_relay: bool = True,
    migrate: bool = True,
) -> FastAPI:
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        settings.ensure_data_dir()
    if migrate:
        upgrade(url)
    factory = session_factory(url)
    subscription_hook.install(settings)  # the store's write hook: Subscriptions, notifications
    # Before the first request, not during it (once per process: later apps find it done).
    validate.warm(frozenset(registry.SERVED_TYPES) | {"Bundle"})
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
        # On PostgreSQL the relays are also woken by commits of other processes (the worker's
        # deliveries, another API's outbox rows): one LISTEN thread per process and database.
        listener: pg_listen.PgListener | None = None
        if relay is not None and start_relay:
            relay.start()
            if pg_listen.is_postgres(url):
                listener = pg_listen.acquire(url)
        try:
            yield
        finally:
            if listener is not None:
                pg_listen.release(listener)
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
    app.state.evaluator = evaluator  # None: $evaluate answers 501 (no evaluator composed in)
    _install_error_handlers(app)

    unavailable.install(app)  # database outage: 503 + Retry-After, not 500
    metrics_api.install(app)  # /metrics; counts and access-logs every answer (pure ASGI)
    # Outermost of the app's own layers (added last): request id, body deadline, NUL in the
    # URL, and the 500 for anything unexpected.
    app.add_middleware(RequestGuard, body_timeout=settings.body_timeout_seconds)
    # SMART Backend Services (`ALERTS_CLIENTS`); before the FHIR routes, which would take
    # /fhir/.well-known/smart-configuration for a read of type ".well-known".
    auth_routes.install(app, settings)
    app.include_router(cds_routes.router)  # CDS Hooks (issue 14); uses the SMART registry
    app.include_router(ops_routes.router)
    app.include_router(subscription_ops.router)  # $status, $events: before the generic routes
    app.include_router(fhir_routes.router)
    app.include_router(web_routes.router)
    install_openapi(app, settings)  # per-type search parameters, from the search registry
    return app
