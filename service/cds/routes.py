"""CDS Hooks 2.0 endpoints: discovery, the `patient-view` service, and its feedback.

- `GET /cds-services` (no token, as the spec requires): the one service and its prefetch.
- `POST /cds-services/bone-metastasis-alerts`: one card per open alert of
  `context.patientId`, `{"cards": []}` when there is none.
- `POST /cds-services/bone-metastasis-alerts/feedback`: accepted / overridden outcomes.

Both POSTs need the CDS Hooks JWT of a client registered in `ALERTS_CLIENTS` (service/cds/
auth.py); its `aud` is the service URL (`<ALERTS_PUBLIC_BASE_URL>/cds-services/
bone-metastasis-alerts`). Errors are plain JSON `{"error": ...}` with the HTTP status (CDS
Hooks is not a FHIR API); store refusals keep their OperationOutcome.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from service.api.auth_routes import service_root
from service.api.deps import UnitOfWorkDep
from service.cds import cards as card_builder
from service.cds import feedback, reads
from service.cds.auth import CdsAuthError, CdsCaller, authenticate
from service.config import Settings
from service.interactions import WriteContext
from service.store.db import transaction

log = logging.getLogger(__name__)
router = APIRouter()

SERVICE_ID = "bone-metastasis-alerts"
HOOK = "patient-view"
MAX_BODY_BYTES = 4 * 1024 * 1024
PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}",
    "observations": "Observation?patient={{context.patientId}}&_sort=-date&_count=100",
}
DISCOVERY = {
    "services": [
        {
            "hook": HOOK,
            "id": SERVICE_ID,
            "title": "Bone-metastasis alerts",
            "description": (
                "Open bone-metastasis alerts for a breast-cancer survivor (new back pain, rising "
                "calcium or alkaline phosphatase, signs of cord compression), with the findings "
                "and evidence that raised them."
            ),
            "prefetch": PREFETCH,
            "usageRequirements": (
                "The EHR is registered in ALERTS_CLIENTS and signs its CDS Hooks JWT with a key "
                "of its JWKS (RS384 or ES384)."
            ),
        }
    ]
}


def _error(status: int, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="cds-services"'} if status == 401 else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def service_url(request: Request) -> str:
    settings: Settings = request.app.state.settings
    return f"{service_root(settings, request)}/cds-services/{SERVICE_ID}"


async def _body(request: Request) -> Any:
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise ValueError("the request body is too large")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ValueError("the request body is not JSON") from None


async def _caller(request: Request) -> CdsCaller:
    state = request.app.state
    return await run_in_threadpool(
        authenticate,
        state.smart_clients,
        state.smart_keys,
        state.session_factory,
        request.headers.get("authorization"),
        service_url(request),
    )


def _ctx(request: Request, caller: CdsCaller) -> WriteContext:
    settings: Settings = request.app.state.settings
    return WriteContext(
        caller.principal, default_count=settings.default_page_size, max_count=settings.max_page_size
    )


@router.get("/cds-services")
def discovery() -> JSONResponse:
    return JSONResponse(DISCOVERY)


@router.post(f"/cds-services/{SERVICE_ID}")
async def patient_view(request: Request) -> JSONResponse:
    try:
        caller = await _caller(request)
    except CdsAuthError as exc:
        return _error(401, str(exc))
    try:
        body = await _body(request)
    except ValueError as exc:
        return _error(400, str(exc))
    if not isinstance(body, dict) or body.get("hook") != HOOK:
        return _error(400, f"this service answers the {HOOK} hook")
    context = body.get("context")
    patient_id = context.get("patientId") if isinstance(context, dict) else None
    if not isinstance(patient_id, str) or not patient_id or "/" in patient_id:
        return _error(400, "context.patientId is required")
    prefetch = reads.prefetched(body.get("prefetch"))
    ctx = _ctx(request, caller)
    root = service_root(request.app.state.settings, request)
    factory = request.app.state.session_factory

    def run() -> list[dict[str, Any]]:
        with transaction(factory) as session:
            _patient, alerts = reads.patient_alerts(session, ctx, patient_id, prefetch)
        return card_builder.cards(alerts, service_root=root)

    cards = await run_in_threadpool(run)
    log.info("CDS %s for %s: %d card(s)", HOOK, caller.client.client_id, len(cards))
    return JSONResponse({"cards": cards})


@router.post(f"/cds-services/{SERVICE_ID}/feedback")
async def service_feedback(request: Request, uow: UnitOfWorkDep) -> JSONResponse:
    try:
        caller = await _caller(request)
    except CdsAuthError as exc:
        return _error(401, str(exc))
    try:
        items = feedback.parse(await _body(request))
    except ValueError as exc:
        return _error(400, str(exc))
    ctx = _ctx(request, caller)
    now = datetime.now(UTC)
    results = await run_in_threadpool(feedback.apply, uow, ctx, SERVICE_ID, items, now)
    log.info("CDS feedback from %s: %s", caller.client.client_id, ", ".join(results))
    return JSONResponse({})
