"""Transaction and batch Bundles.

Transaction: all entries succeed together or nothing is stored (one DB transaction; the first
failure rolls everything back and is answered with its OperationOutcome, naming the entry).
Batch: each entry in its own savepoint, answered one by one.

`urn:uuid:` (and absolute) fullUrls of POSTed entries get server ids and every reference to
them inside the Bundle is rewritten before validation, as FHIR prescribes.

Resource types this server does not serve (Claim, Encounter, ExplanationOfBenefit...) are
skipped, never a failed Bundle: their entry answers `200 OK` with an informational
OperationOutcome, and references to them are rewritten to `Type/id` like any other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.orm import Session

from service.errors import FHIRError, Issue, bad_request, operation_outcome
from service.fhir.registry import is_served
from service.interactions import (
    WriteContext,
    conditional_delete,
    conditional_update,
    create,
    delete,
    new_id,
    query_items,
    read,
    search,
    update,
    vread,
)
from service.store.resources import Stored, fhir_instant

_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}


@dataclass
class _Entry:
    index: int
    method: str
    url: str
    resource: Any
    full_url: str | None
    if_none_exist: str | None
    if_match: str | None
    assigned: str | None = None  # "Type/id" for POST/PUT targets


def _parse_entries(bundle: Mapping[str, Any]) -> list[_Entry]:
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise bad_request("Bundle.entry must be an array", ("Bundle.entry",))
    out = []
    for i, e in enumerate(entries):
        where = f"Bundle.entry[{i}]"
        if not isinstance(e, Mapping):
            raise bad_request(f"{where} must be an object", (where,))
        req = e.get("request")
        if not isinstance(req, Mapping) or not req.get("method") or not req.get("url"):
            raise bad_request(f"{where}.request needs method and url", (f"{where}.request",))
        method = str(req["method"]).upper()
        if method not in _ORDER:
            raise bad_request(f"{where}.request.method is not supported", (f"{where}.request",))
        out.append(
            _Entry(
                i,
                method,
                str(req["url"]).lstrip("/"),
                e.get("resource"),
                e.get("fullUrl"),
                req.get("ifNoneExist"),
                req.get("ifMatch"),
            )
        )
    return out


def _rewrite(value: Any, mapping: Mapping[str, str]) -> Any:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == "reference" and isinstance(v, str) and v in mapping:
                out[k] = mapping[v]
            else:
                out[k] = _rewrite(v, mapping)
        return out
    if isinstance(value, list):
        return [_rewrite(v, mapping) for v in value]
    return value


def _assign_ids(entries: list[_Entry]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for e in entries:
        rtype = e.url.split("?", 1)[0].split("/", 1)[0]
        if e.method == "POST" and "/" not in e.url.split("?", 1)[0]:
            e.assigned = f"{rtype}/{new_id()}"
        elif e.method == "PUT" and "?" not in e.url:
            e.assigned = e.url
        if e.assigned and e.full_url:
            mapping[e.full_url] = e.assigned
    return mapping


def resolved_resources(bundle: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The resources of any Bundle (or a single resource) with ids assigned and urn:uuid
    references rewritten exactly as a transaction would: the dry run shares this path."""
    if bundle.get("resourceType") != "Bundle":
        return [dict(bundle)]
    out = []
    entries = bundle.get("entry") or []
    mapping: dict[str, str] = {}
    staged: list[tuple[str | None, dict[str, Any]]] = []
    for e in entries:
        res = e.get("resource") if isinstance(e, Mapping) else None
        if not isinstance(res, Mapping) or not isinstance(res.get("resourceType"), str):
            continue
        req = e.get("request") or {}
        url = str(req.get("url", "")) if isinstance(req, Mapping) else ""
        rid = res.get("id")
        if (
            isinstance(req, Mapping)
            and req.get("method") == "PUT"
            and "/" in url
            and "?" not in url
        ):
            rid = url.split("/", 1)[1]
        if not rid:
            rid = new_id()
        body = {**res, "id": rid}
        full = e.get("fullUrl")
        if isinstance(full, str):
            mapping[full] = f"{res['resourceType']}/{rid}"
        staged.append((full, body))
    for _full, body in staged:
        out.append(_rewrite(body, mapping))
    return out


def _response(status: str, stored: Stored | None = None, outcome: Any = None) -> dict[str, Any]:
    resp: dict[str, Any] = {"status": status}
    if stored is not None:
        resp["location"] = stored.location
        resp["etag"] = stored.etag
        resp["lastModified"] = fhir_instant(stored.last_updated)
    if outcome is not None:
        resp["outcome"] = outcome
    return resp


_STATUS_TEXT = {200: "200 OK", 201: "201 Created", 204: "204 No Content"}


def _skipped(rtype: str) -> dict[str, Any]:
    return {
        "response": _response(
            "200 OK",
            outcome=operation_outcome(
                [
                    Issue(
                        "information",
                        "informational",
                        f"Not stored: {rtype} is not a type this service serves or evaluates",
                    )
                ]
            ),
        )
    }


def _run_entry(session: Session, ctx: WriteContext, e: _Entry) -> dict[str, Any]:
    path, _, query = e.url.partition("?")
    parts = path.split("/")
    rtype = parts[0]
    if e.method in ("POST", "PUT", "DELETE") and not is_served(rtype):
        return _skipped(rtype)
    if e.method == "POST":
        if len(parts) != 1:
            raise FHIRError.of(
                400, "not-supported", f"POST {e.url}: operations are not supported in Bundles"
            )
        assert e.assigned is not None
        stored, status = create(
            session,
            ctx,
            rtype,
            e.resource,
            if_none_exist=e.if_none_exist,
            assigned_id=e.assigned.split("/", 1)[1],
        )
        return {
            "fullUrl": stored.type + "/" + stored.id,
            "response": _response(_STATUS_TEXT[status], stored),
        }
    if e.method == "PUT":
        if query:
            stored, status = conditional_update(session, ctx, rtype, query, e.resource)
        elif len(parts) == 2:
            stored, status = update(session, ctx, rtype, parts[1], e.resource, if_match=e.if_match)
        else:
            raise bad_request(f"PUT {e.url}: the url must be Type/id or Type?criteria")
        return {
            "fullUrl": stored.type + "/" + stored.id,
            "response": _response(_STATUS_TEXT[status], stored),
        }
    if e.method == "DELETE":
        if query:
            conditional_delete(session, ctx, rtype, query)
        elif len(parts) == 2:
            delete(session, ctx, rtype, parts[1])
        else:
            raise bad_request(f"DELETE {e.url}: the url must be Type/id or Type?criteria")
        return {"response": _response("204 No Content")}
    if e.method == "PATCH":
        raise FHIRError.of(400, "not-supported", "PATCH entries are not supported in Bundles")
    # GET / HEAD
    if len(parts) == 2:
        stored = read(session, ctx, rtype, parts[1])
        return {"resource": stored.json(), "response": _response("200 OK", stored)}
    if len(parts) == 4 and parts[2] == "_history":
        stored = vread(session, ctx, rtype, parts[1], parts[3])
        return {"resource": stored.json(), "response": _response("200 OK", stored)}
    _q, rows, total = search(session, ctx, rtype, query_items(query))
    inner: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if total is not None:
        inner["total"] = total
    inner["entry"] = [{"resource": orjson.loads(r), "search": {"mode": "match"}} for r in rows]
    return {"resource": inner, "response": _response("200 OK")}


def _entry_error(e: _Entry, err: FHIRError) -> FHIRError:
    where = f"Bundle.entry[{e.index}]"
    issues = [
        Issue(i.severity, i.code, f"{where}: {i.diagnostics}", (where, *i.expression))
        for i in err.issues
    ]
    return FHIRError(err.status, issues, err.headers)


def process(
    session_scope: Callable[[], Any],
    ctx: WriteContext,
    bundle: Mapping[str, Any],
) -> dict[str, Any]:
    """Run a transaction or batch Bundle; returns the response Bundle."""
    btype = bundle.get("type")
    if btype not in ("transaction", "batch"):
        raise FHIRError.of(
            422,
            "invalid",
            "POST /fhir takes a Bundle of type transaction or batch",
            ("Bundle.type",),
        )
    entries = _parse_entries(bundle)
    mapping = _assign_ids(entries)
    for e in entries:
        if e.resource is not None:
            e.resource = _rewrite(e.resource, mapping)
    ordered = sorted(entries, key=lambda x: (_ORDER[x.method], x.index))
    results: dict[int, dict[str, Any]] = {}
    if btype == "transaction":
        try:
            with session_scope() as session:
                for e in ordered:
                    try:
                        results[e.index] = _run_entry(session, ctx, e)
                    except FHIRError as err:
                        raise _entry_error(e, err) from None
                ctx.flush_outbox(session)
        except FHIRError:
            ctx.patients.clear()
            raise
        rtype = "transaction-response"
    else:
        with session_scope() as session:
            for e in ordered:
                before = set(ctx.patients)
                try:
                    with session.begin_nested():
                        results[e.index] = _run_entry(session, ctx, e)
                except FHIRError as err:
                    ctx.patients = before
                    results[e.index] = {
                        "response": _response(
                            f"{err.status}", outcome=_entry_error(e, err).operation_outcome()
                        )
                    }
            ctx.flush_outbox(session)
        rtype = "batch-response"
    return {
        "resourceType": "Bundle",
        "type": rtype,
        "entry": [results[i] for i in range(len(entries))],
    }
