"""FHIR REST routes. Thin: read the request, call an interaction inside a unit of work (which
writes the outbox on commit), shape the response."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from service import bundles, dry_run, history, interactions, searching
from service.api.deps import (
    EvaluatorDep,
    FactoryDep,
    PrincipalDep,
    SettingsDep,
    UnitOfWorkDep,
    read_body,
    read_limited,
)
from service.api.patch import PATCH_TYPES, patch_document
from service.api.responses import fhir_response, stored_response
from service.auth import Principal
from service.config import Settings
from service.errors import FHIRError, bad_request
from service.fhir.index import parse_instant
from service.fhir.validate import is_valid, parse_json
from service.fhir.wellformed import instant_problem
from service.interactions import WriteContext
from service.store.db import transaction
from service.store.resources import Stored

router = APIRouter(prefix="/fhir")
T = TypeVar("T")


async def _reading(factory: sessionmaker[Session], work: Callable[[Session], T]) -> T:
    """`work(session)` in a read-only transaction, off the event loop."""

    def run() -> T:
        with transaction(factory) as session:
            return work(session)

    return await run_in_threadpool(run)


def _storable_version(vid: str) -> bool:
    """A version id the store can hold: 1 .. 2^31-1 in plain digits (an INTEGER column).
    Anything else is simply not a known version (404), never a driver overflow (500)."""
    return vid.isascii() and vid.isdigit() and vid[0] != "0" and len(vid) <= 10 and int(vid) < 2**31


def fhir_base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


def parse_as_of(value: str | None, settings: Settings) -> datetime | None:
    """`asOf` judges replayed test data at a chosen time. Only where allowed (the embedded
    default, or ALERTS_ALLOW_AS_OF=true), so it can never change how live data is judged."""
    if value is None:
        return None
    if not settings.as_of_allowed:
        raise FHIRError.of(
            403,
            "forbidden",
            "asOf is disabled on this server (set ALERTS_ALLOW_AS_OF=true on a test server)",
        )
    return _instant(value)


def _instant(value: str) -> datetime:
    at = parse_instant(value)
    if at is None:
        raise bad_request("asOf must be a FHIR dateTime with a time, e.g. 2026-06-01T12:00:00Z")
    problem = instant_problem(value.replace(" ", "+"))  # e.g. year 0001 at +14:00
    if problem:
        raise bad_request(f"asOf: {problem}", ("asOf",))
    return at


def _ctx(principal: Principal, settings: Settings, as_of: datetime | None = None) -> WriteContext:
    return WriteContext(
        principal,
        as_of=as_of,
        default_count=settings.default_page_size,
        max_count=settings.max_page_size,
    )


@router.post("")
@router.post("/")
async def bundle(
    request: Request,
    settings: SettingsDep,
    principal: PrincipalDep,
    uow: UnitOfWorkDep,
    asOf: str | None = None,
) -> Response:
    body = parse_json(
        await read_body(request, settings), max_bundle_entries=settings.max_bundle_entries
    )
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise FHIRError.of(
            422, "invalid", "POST /fhir takes a transaction or batch Bundle", ("resourceType",)
        )
    ctx = _ctx(principal, settings, parse_as_of(asOf, settings))
    result = await run_in_threadpool(bundles.process, uow, ctx, body, fhir_base(request), settings)
    return fhir_response(result)


@router.post("/$evaluate")
async def evaluate(
    request: Request,
    settings: SettingsDep,
    principal: PrincipalDep,
    evaluator: EvaluatorDep,
    asOf: str | None = None,
) -> Response:
    """Dry run (service.dry_run): nothing is stored; the rules run in the evaluator the
    composition root handed to `create_app`."""
    principal.require("Flag", "read")
    principal.require("CommunicationRequest", "read")
    if evaluator is None:
        raise FHIRError.of(501, "not-supported", "$evaluate is not available on this server")
    body = parse_json(
        await read_body(request, settings), max_bundle_entries=settings.max_bundle_entries
    )
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        # Judging a lone resource would answer an empty Bundle: a silent "no alerts".
        raise bad_request("$evaluate takes a Bundle", ("resourceType",))
    at = _instant(asOf) if asOf is not None else None
    result = await run_in_threadpool(dry_run.evaluate_bundle, body, at, evaluator)
    return fhir_response(result)


async def _search(
    request: Request,
    rtype: str,
    items: list[tuple[str, str]],
    principal: Principal,
    settings: Settings,
    factory: sessionmaker[Session],
) -> Response:
    q = searching.parse(principal, rtype, items, settings)  # 404/403/400 before any SQL
    base = fhir_base(request)

    return fhir_response(
        await _reading(
            factory, lambda s: searching.run(s, principal, q, base=base, settings=settings)
        )
    )


@router.get("/{rtype}")
async def search_type(
    request: Request,
    rtype: str,
    settings: SettingsDep,
    principal: PrincipalDep,
    factory: FactoryDep,
) -> Response:
    items = list(request.query_params.multi_items())
    return await _search(request, rtype, items, principal, settings, factory)


@router.post("/{rtype}/_search")
async def search_post(
    request: Request,
    rtype: str,
    settings: SettingsDep,
    principal: PrincipalDep,
    factory: FactoryDep,
) -> Response:
    items = [*request.query_params.multi_items(), *await _form_items(request, settings)]
    return await _search(request, rtype, items, principal, settings, factory)


async def _form_items(request: Request, settings: Settings) -> list[tuple[str, str]]:
    """The parameters of a POST _search body: application/x-www-form-urlencoded only (any
    other body would be silently ignored, turning a filtered search into "everything"),
    within the body size limit."""
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    body = await read_limited(request, settings.max_body_bytes)
    if not body.strip():
        return []
    if ctype != "application/x-www-form-urlencoded":
        raise FHIRError.of(
            415,
            "not-supported",
            "POST _search takes application/x-www-form-urlencoded parameters",
        )
    try:
        return parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            max_num_fields=settings.search_max_params,
            errors="strict",
        )
    except UnicodeDecodeError:
        raise bad_request("The _search body is not UTF-8") from None
    except ValueError:  # parse_qsl's only other complaint: more fields than allowed
        raise FHIRError.of(
            400, "too-costly", f"A search takes at most {settings.search_max_params} parameters"
        ) from None


@router.post("/{rtype}")
async def create(
    request: Request,
    rtype: str,
    settings: SettingsDep,
    principal: PrincipalDep,
    uow: UnitOfWorkDep,
) -> Response:
    interactions.require_served(rtype)
    body = parse_json(await read_body(request, settings))
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "asOf"]
    as_of = parse_as_of(request.query_params.get("asOf"), settings)
    # Conditional create: the If-None-Exist header, or search parameters on the POST URL
    # (what fhirpy's get_or_create sends).
    criteria = request.headers.get("if-none-exist") or (urlencode(query) if query else None)
    ctx = _ctx(principal, settings, as_of)

    def work() -> tuple[Stored, int]:
        valid = is_valid(body, expected_type=rtype)  # before the transaction: see is_valid
        return uow.run(
            ctx,
            lambda s: interactions.create(
                s, ctx, rtype, body, if_none_exist=criteria, validated=valid
            ),
        )

    stored, status = await run_in_threadpool(work)
    if status == 200 and not principal.allows(rtype, "read"):
        # The criteria matched an existing resource, and this token may create but not read:
        # acknowledge the match (its location), never show the record.
        return Response(
            status_code=200,
            headers={"Location": f"{fhir_base(request)}/{stored.location}", "ETag": stored.etag},
        )
    return stored_response(stored, status, base=fhir_base(request), location=True)


@router.get("/{rtype}/{rid}")
async def read(
    request: Request,
    rtype: str,
    rid: str,
    settings: SettingsDep,
    principal: PrincipalDep,
    factory: FactoryDep,
) -> Response:
    ctx = _ctx(principal, settings)
    stored = await _reading(factory, lambda s: interactions.read(s, ctx, rtype, rid))
    inm = request.headers.get("if-none-match")
    if inm and inm.strip() in (stored.etag, f'"{stored.version_id}"'):
        return Response(status_code=304, headers={"ETag": stored.etag})
    return stored_response(stored)


@router.get("/{rtype}/{rid}/_history/{vid}")
async def vread(
    rtype: str,
    rid: str,
    vid: str,
    settings: SettingsDep,
    principal: PrincipalDep,
    factory: FactoryDep,
) -> Response:
    ctx = _ctx(principal, settings)
    if not _storable_version(vid):
        interactions.require_served(rtype)
        principal.require(rtype, "read")
        raise FHIRError.of(404, "not-found", "That version is not known")
    return stored_response(
        await _reading(factory, lambda s: interactions.vread(s, ctx, rtype, rid, vid))
    )


@router.get("/{rtype}/{rid}/_history")
async def instance_history(
    request: Request,
    rtype: str,
    rid: str,
    settings: SettingsDep,
    principal: PrincipalDep,
    factory: FactoryDep,
) -> Response:
    ctx = _ctx(principal, settings)
    base = fhir_base(request)
    return fhir_response(
        await _reading(factory, lambda s: history.instance_history(s, ctx, rtype, rid, base=base))
    )


@router.put("/{rtype}/{rid}")
async def update(
    request: Request,
    rtype: str,
    rid: str,
    settings: SettingsDep,
    principal: PrincipalDep,
    uow: UnitOfWorkDep,
) -> Response:
    interactions.require_served(rtype)
    body = parse_json(await read_body(request, settings))
    as_of = parse_as_of(request.query_params.get("asOf"), settings)
    ctx = _ctx(principal, settings, as_of)
    if_match = request.headers.get("if-match")

    def work() -> tuple[Stored, int]:
        valid = is_valid(body, expected_type=rtype)  # before the transaction: see is_valid
        return uow.run(
            ctx,
            lambda s: interactions.update(
                s, ctx, rtype, rid, body, if_match=if_match, validated=valid
            ),
        )

    stored, status = await run_in_threadpool(work)
    return stored_response(stored, status, base=fhir_base(request), location=status == 201)


@router.put("/{rtype}")
async def conditional_update(
    request: Request, rtype: str, settings: SettingsDep, principal: PrincipalDep, uow: UnitOfWorkDep
) -> Response:
    interactions.require_served(rtype)
    body = parse_json(await read_body(request, settings))
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "asOf"]
    if not query:
        raise bad_request("PUT needs Type/id, or search criteria for a conditional update")
    ctx = _ctx(principal, settings, parse_as_of(request.query_params.get("asOf"), settings))
    if_match = request.headers.get("if-match")

    criteria = urlencode(query)

    def work() -> tuple[Stored, int]:
        # Judged as it will be stored: without an id of its own, the id is the match's or new.
        assigns = isinstance(body, dict) and body.get("id") is None
        valid = is_valid(body, expected_type=rtype, server_assigns_id=assigns)
        return uow.run(
            ctx,
            lambda s: interactions.conditional_update(
                s, ctx, rtype, criteria, body, if_match=if_match, validated=valid
            ),
        )

    stored, status = await run_in_threadpool(work)
    return stored_response(stored, status, base=fhir_base(request), location=status == 201)


@router.patch("/{rtype}/{rid}")
async def patch(
    request: Request,
    rtype: str,
    rid: str,
    settings: SettingsDep,
    principal: PrincipalDep,
    uow: UnitOfWorkDep,
) -> Response:
    interactions.require_served(rtype)
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype not in PATCH_TYPES:
        raise FHIRError.of(
            415,
            "not-supported",
            "PATCH takes application/json-patch+json (RFC 6902) or "
            "application/merge-patch+json (RFC 7396; also as application/json)",
        )
    ops = parse_json(await read_body(request, settings, patch=True))
    ctx = _ctx(principal, settings)
    if_match = request.headers.get("if-match")

    def apply(doc: dict[str, Any]) -> dict[str, Any]:
        return patch_document(ctype, doc, ops)

    return stored_response(
        await run_in_threadpool(
            uow.run, ctx, lambda s: interactions.patch(s, ctx, rtype, rid, apply, if_match=if_match)
        )
    )


@router.delete("/{rtype}/{rid}")
async def delete(
    rtype: str, rid: str, settings: SettingsDep, principal: PrincipalDep, uow: UnitOfWorkDep
) -> Response:
    ctx = _ctx(principal, settings)

    await run_in_threadpool(uow.run, ctx, lambda s: interactions.delete(s, ctx, rtype, rid))
    return Response(status_code=204)


@router.delete("/{rtype}")
async def conditional_delete(
    request: Request, rtype: str, settings: SettingsDep, principal: PrincipalDep, uow: UnitOfWorkDep
) -> Response:
    """DELETE Type?criteria: the single match is deleted; no match is not an error (204);
    several are a 412 and nothing is deleted."""
    interactions.require_served(rtype)
    query = list(request.query_params.multi_items())
    if not query:
        raise bad_request("DELETE needs Type/id, or search criteria for a conditional delete")
    ctx = _ctx(principal, settings)

    criteria = urlencode(query)
    await run_in_threadpool(
        uow.run, ctx, lambda s: interactions.conditional_delete(s, ctx, rtype, criteria)
    )
    return Response(status_code=204)
