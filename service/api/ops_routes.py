"""Liveness, readiness and pipeline backlog.

`/healthz` is liveness: the process answers (restart it if not). `/readyz` is readiness: the
database and the broker answer (send it traffic only then); an orchestrator that restarted on
a database outage would only add restarts to it. Both are open (no token): they say up or
down, nothing more.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from service.api.capability import capability_statement
from service.api.deps import FactoryDep, PrincipalDep, SettingsDep
from service.api.responses import fhir_response
from service.errors import not_found
from service.relay import ping_broker
from service.store import outbox, resources
from service.store.db import transaction
from service.subscriptions import deliveries
from service.subscriptions.deliveries import DeliveryView

log = logging.getLogger(__name__)

router = APIRouter()


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _check(probe: Callable[[], object]) -> str:
    try:
        probe()
    except Exception as exc:  # any failure means "not ready"; the class is enough to act on
        log.warning("readiness check failed: %s", type(exc).__name__)
        return "unavailable"
    return "ok"


@router.get("/readyz")
async def readyz(factory: FactoryDep, settings: SettingsDep) -> JSONResponse:
    def database() -> None:
        with transaction(factory) as session:
            session.execute(text("SELECT 1"))

    def run() -> dict[str, str]:
        checks = {"database": _check(database)}
        if settings.broker_url:
            url = settings.broker_url
            checks["broker"] = _check(lambda: ping_broker(url))
        return checks

    checks = await run_in_threadpool(run)
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
        headers=None if ready else {"Retry-After": "5"},
    )


@router.get("/ops/backlog")
async def backlog(_principal: PrincipalDep, factory: FactoryDep) -> dict[str, int]:
    def run() -> int:
        with transaction(factory) as session:
            return outbox.backlog(session)

    return {"pending": await run_in_threadpool(run)}


@router.get("/ops/subscriptions/{subscription_id}/deliveries")
async def delivery_log(
    subscription_id: str, principal: PrincipalDep, factory: FactoryDep
) -> dict[str, Any]:
    """The delivery log of one subscription: every notification and each attempt (status,
    HTTP code, error class, timing). References only; no patient data."""
    principal.require("Subscription", "read")

    def run() -> list[DeliveryView]:
        with transaction(factory) as session:
            if resources.read(session, "Subscription", subscription_id) is None:
                raise not_found(f"Subscription/{subscription_id} is not known")
            return deliveries.log(session, subscription_id)

    def instant(moment: datetime | None) -> str | None:
        return resources.fhir_instant(moment) if moment is not None else None

    views = await run_in_threadpool(run)
    return {
        "subscription": f"Subscription/{subscription_id}",
        "deliveries": [
            {
                "id": v.uid,
                "resource": v.resource,
                "status": v.status,
                "created": instant(v.created_at),
                "attempts": v.attempts,
                "nextAttempt": instant(v.next_attempt_at) if v.status == "pending" else None,
                "delivered": instant(v.delivered_at),
                "lastError": v.last_error,
                "tries": [
                    {
                        "number": a.number,
                        "started": instant(a.started_at),
                        "durationMs": a.duration_ms,
                        "outcome": a.outcome,
                        "httpStatus": a.http_status,
                        "error": a.error,
                    }
                    for a in v.tries
                ],
            }
            for v in views
        ],
    }


@router.get("/fhir/metadata")
def metadata(request: Request) -> Response:
    evaluate = getattr(request.app.state, "evaluator", None) is not None
    base = str(request.base_url).rstrip("/") + "/fhir"
    return fhir_response(capability_statement(base, evaluate=evaluate))


@router.get("/ops/report")
async def report(principal: PrincipalDep, factory: FactoryDep) -> dict[str, Any]:
    """Alert burden (service/report.py): counts and durations only, for whoever may read the
    alerts (Flag and CommunicationRequest read scope)."""
    principal.require("Flag", "read")
    principal.require("CommunicationRequest", "read")
    from service.report import load_report

    def run() -> dict[str, Any]:
        with transaction(factory) as session:
            return load_report(session)

    return await run_in_threadpool(run)
