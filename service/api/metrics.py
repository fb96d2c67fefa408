"""`GET /metrics` (Prometheus text format) and the middleware that counts every answer.

The middleware is pure ASGI and sits outside the routes and their error handlers, so it sees
every status, including a 500 from an exception no handler took, and writes the access-log
line of every request. Routes are labelled by their template
(`/fhir/{resource_type}/{resource_id}`), never by the raw path, which can carry patient ids.

`/metrics` needs a bearer token: the figures hold no patient data but do reveal volumes and
activity. Either any valid JWT (any scope), or the static `ALERTS_METRICS_TOKEN`, which suits
a Prometheus scraper (`authorization: {credentials_file: ...}`): JWTs live at most
`ALERTS_TOKEN_MAX_LIFETIME_SECONDS`.
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import metrics
from service.api.access_log import log_request
from service.api.deps import FactoryDep, get_principal

router = APIRouter()


def scraper(request: Request) -> None:
    """The static scrape token if configured and presented, else a valid JWT (401 if not)."""
    expected = request.app.state.settings.metrics_token
    presented = request.headers.get("authorization", "")
    if expected and hmac.compare_digest(presented.encode(), f"Bearer {expected}".encode()):
        return
    get_principal(request)


@router.get("/metrics", include_in_schema=False, dependencies=[Depends(scraper)])
async def prometheus(factory: FactoryDep) -> Response:
    body = await run_in_threadpool(metrics.render, factory)
    return Response(body, media_type=metrics.CONTENT_TYPE_LATEST)


def _route(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class RequestMetrics:
    """Counts requests by method, route template and status, times them, and writes the
    access-log line (service/api/access_log.py): one ASGI wrapper per request for both."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        method = str(scope.get("method", ""))
        try:
            await self.app(scope, receive, sending)
        except Exception:
            status = 500  # what the client gets when an exception escapes before any answer
            raise
        finally:
            route = _route(scope)
            seconds = time.perf_counter() - started
            metrics.REQUESTS.labels(method, route, str(status)).inc()
            metrics.REQUEST_SECONDS.labels(method, route).observe(seconds)
            log_request(method, str(scope.get("path", "")), status, seconds)


def install(app: FastAPI) -> None:
    """Registers the counting middleware and the `/metrics` route on the app."""
    app.add_middleware(RequestMetrics)
    app.include_router(router)
