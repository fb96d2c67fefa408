"""The service's own access log: one line per request, `METHOD /path STATUS 12.3ms`.

uvicorn's access log is switched off (service/cli.py): query strings can carry patient
identifiers (`identifier=MRN|…`), and a path names resource ids at most. Pure ASGI rather than
Starlette's `@app.middleware("http")` (BaseHTTPMiddleware), which costs a task, a stream and a
response wrapper per request (a few percent of the CPU of a single POST), and never saw the
requests whose exception no handler took: here a 500 is logged like any other answer, and
503s (database outage) are answers of the exception handlers inside this layer.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("fhir_alerts.access")


class AccessLog:
    """Logs method, path (never the query string), status and duration of every request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when an exception escapes before any answer

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "%s %s %d %.1fms",
                    scope.get("method", ""),
                    scope.get("path", ""),
                    status,
                    (time.perf_counter() - started) * 1000,
                )
