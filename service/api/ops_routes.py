"""Liveness and pipeline backlog."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from service.api.capability import capability_statement
from service.api.deps import FactoryDep, PrincipalDep
from service.api.responses import fhir_response
from service.errors import not_found
from service.store import outbox, resources
from service.store.db import transaction
from service.subscriptions import deliveries
from service.subscriptions.deliveries import DeliveryView

router = APIRouter()


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


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
    return fhir_response(capability_statement(str(request.base_url).rstrip("/") + "/fhir"))
