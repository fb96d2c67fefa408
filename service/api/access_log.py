"""The service's own access log: one line per request, `METHOD /path STATUS 12.3ms`.

uvicorn's access log is switched off (service/cli.py): query strings can carry patient
identifiers (`identifier=MRN|…`), and a path names resource ids at most. Pure ASGI rather than
Starlette's `@app.middleware("http")` (BaseHTTPMiddleware), which costs a task, a stream and a
response wrapper per request (a few percent of the CPU of a single POST), and never saw the
requests whose exception no handler took: here a 500 is logged like any other answer, and
503s (database outage) are answers of the exception handlers inside this layer. The line is
written by the request-metrics middleware (one wrapper per request serves both).
"""

from __future__ import annotations

import logging

access_log = logging.getLogger("fhir_alerts.access")


def log_request(method: str, path: str, status: int, seconds: float) -> None:
    """One line per answered request; called by the request middleware
    (service/api/metrics.py `RequestMetrics`), which times and counts the same request, so one
    ASGI layer, not two, wraps every request."""
    if access_log.isEnabledFor(logging.INFO):
        access_log.info("%s %s %d %.1fms", method, path, status, seconds * 1000)
