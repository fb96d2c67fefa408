"""A database that cannot be reached is an outage, not a server bug: 503 + Retry-After.

While PostgreSQL is stopped or restarting, every request that touches it fails in the driver
(connection refused, connection terminated, pool exhausted). Those answer 503 with a
`transient` OperationOutcome and `Retry-After`, through the normal exception handlers, so the
client's connection stays usable and every such answer is in the access log. Nothing was
stored (the transaction rolled back whole); the client retries. The pool's pre-ping replaces
dead connections once the database is back, so recovery needs no restart.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request, Response
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from service.api.responses import fhir_response
from service.errors import Issue, operation_outcome

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeoutError)


async def database_unavailable(request: Request, exc: Exception) -> Response:
    # The driver's message names hosts and sometimes statements: log the class only.
    log.warning(
        "database unavailable (%s) on %s %s", type(exc).__name__, request.method, request.url.path
    )
    issue = Issue(
        "error",
        "transient",
        "The database is temporarily unavailable; nothing was stored. Retry later.",
    )
    return fhir_response(operation_outcome([issue]), 503, {"Retry-After": str(RETRY_AFTER_SECONDS)})


def install(app: FastAPI) -> None:
    for exc_class in UNAVAILABLE:
        app.add_exception_handler(exc_class, database_unavailable)
