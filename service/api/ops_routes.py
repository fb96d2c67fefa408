"""Liveness and pipeline backlog."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from service.api.capability import capability_statement
from service.api.deps import FactoryDep, PrincipalDep
from service.api.responses import fhir_response
from service.store import outbox
from service.store.db import transaction

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


@router.get("/fhir/metadata")
def metadata(request: Request) -> Response:
    return fhir_response(capability_statement(str(request.base_url).rstrip("/") + "/fhir"))
