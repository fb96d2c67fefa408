"""Transaction and batch Bundles: plan, then execute.

`service.transaction_plan` decides what every entry does before anything is written:
conditional creates/updates/deletes resolved, ids assigned, `urn:uuid` and conditional
references rewritten to the ids actually created or matched, overlaps refused. This module runs
that plan against the store.

Transaction: all entries succeed together or nothing is stored (one unit of work, whose
commit also writes the outbox; the first failure rolls everything back and is answered with its
OperationOutcome, naming the entry). Batch: each entry in its own savepoint, answered one by one.

Resource types this server does not serve (Claim, Encounter, ExplanationOfBenefit...) are
skipped, never a failed Bundle: their entry answers `200 OK` with an informational
OperationOutcome, and references to them are rewritten to `Type/id` like any other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from service import interactions, searching
from service.config import Settings
from service.errors import FHIRError, Issue, operation_outcome
from service.interactions import WriteContext, query_items
from service.store import resources as store
from service.store.resources import Stored, fhir_instant
from service.transaction_plan import PlannedEntry, entry_error, plan_bundle
from service.unit_of_work import UnitOfWork


class StoreResolver:
    """The planner's view of stored data, inside the Bundle's own DB transaction; every
    conditional interaction checks the principal's rights before it matches anything."""

    def __init__(self, session: Session, ctx: WriteContext) -> None:
        self.session = session
        self.ctx = ctx

    def create_match(self, resource_type: str, criteria: str) -> str | None:
        return interactions.conditional_create_match(
            self.session, self.ctx, resource_type, criteria
        )

    def update_target(self, resource_type: str, criteria: str, body_id: str | None) -> str | None:
        return interactions.conditional_update_target(
            self.session, self.ctx, resource_type, criteria, body_id
        )

    def delete_target(self, resource_type: str, criteria: str) -> str | None:
        return interactions.conditional_delete_target(
            self.session, self.ctx, resource_type, criteria
        )

    def reference_matches(self, resource_type: str, criteria: str) -> list[str]:
        return interactions.match_ids(self.session, resource_type, criteria)


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


def _written(stored: Stored, status: int) -> dict[str, Any]:
    return {
        "fullUrl": stored.type + "/" + stored.id,
        "response": _response(_STATUS_TEXT[status], stored),
    }


def _run_entry(
    session: Session, ctx: WriteContext, e: PlannedEntry, search: _Search
) -> dict[str, Any]:
    t = e.target
    assert t is not None
    rtype = t.resource_type
    if e.action == "skip":
        return _skipped(rtype)
    if e.action == "create":
        assert e.resource_id is not None
        stored, status = interactions.create(
            session, ctx, rtype, e.resource, assigned_id=e.resource_id
        )
        return _written(stored, status)
    if e.action == "match":  # ifNoneExist found it: nothing written, no body returned
        assert e.resource_id is not None
        found = store.read(session, rtype, e.resource_id)
        assert found is not None
        return _written(found, 200)
    if e.action == "update":
        assert e.resource_id is not None
        stored, status = interactions.update(
            session, ctx, rtype, e.resource_id, e.resource, if_match=e.if_match
        )
        return _written(stored, status)
    if e.action == "delete":
        assert e.resource_id is not None
        interactions.delete(session, ctx, rtype, e.resource_id)
        return {"response": _response("204 No Content")}
    if e.action == "noop":  # a conditional delete that matched nothing
        return {"response": _response("204 No Content")}
    # GET / HEAD
    if t.shape == "instance":
        assert t.resource_id is not None
        stored = interactions.read(session, ctx, rtype, t.resource_id)
        return {"resource": stored.json(), "response": _response("200 OK", stored)}
    if t.shape == "version":
        assert t.resource_id is not None and t.version_id is not None
        stored = interactions.vread(session, ctx, rtype, t.resource_id, t.version_id)
        return {"resource": stored.json(), "response": _response("200 OK", stored)}
    # A search entry answers exactly as GET /fhir/Type?… does (includes, _summary, _elements,
    # caps and scopes), through the same search module.
    return {
        "resource": search(session, rtype, query_items(t.query)),
        "response": _response("200 OK"),
    }


def _failed(err: FHIRError) -> dict[str, Any]:
    return {"response": _response(f"{err.status}", outcome=err.operation_outcome())}


class _Search:
    """search-type for GET entries: the route's own search, with this deployment's caps."""

    def __init__(self, ctx: WriteContext, settings: Settings, base: str | None) -> None:
        self._ctx, self._settings, self._base = ctx, settings, base or ""

    def __call__(
        self, session: Session, rtype: str, items: list[tuple[str, str]]
    ) -> dict[str, Any]:
        q = searching.parse(self._ctx.principal, rtype, items, self._settings)
        return searching.run(
            session, self._ctx.principal, q, base=self._base, settings=self._settings
        )


def process(
    uow: UnitOfWork,
    ctx: WriteContext,
    bundle: Mapping[str, Any],
    base: str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Run a transaction or batch Bundle; returns the response Bundle. `base` is this
    server's `…/fhir` as the client addressed it: absolute request urls must start with it.
    `settings` carries the search caps for GET entries (the defaults when not given)."""
    search = _Search(ctx, settings or Settings.model_construct(), base)
    btype = bundle.get("type")
    if btype not in ("transaction", "batch"):
        raise FHIRError.of(
            422,
            "invalid",
            "POST /fhir takes a Bundle of type transaction or batch",
            ("Bundle.type",),
        )
    atomic = btype == "transaction"
    results: dict[int, dict[str, Any]] = {}
    with uow(ctx) as session:
        plan = plan_bundle(bundle, StoreResolver(session, ctx), base=base, atomic=atomic)
        for e in plan.ordered:
            if e.error is not None:
                results[e.index] = _failed(e.error)
                continue
            if atomic:
                try:
                    results[e.index] = _run_entry(session, ctx, e, search)
                except FHIRError as err:
                    raise entry_error(e.index, err) from None
                continue
            before = set(ctx.patients)
            try:
                with session.begin_nested():
                    results[e.index] = _run_entry(session, ctx, e, search)
            except FHIRError as err:
                ctx.patients = before  # the entry's savepoint was rolled back: no evaluation
                results[e.index] = _failed(entry_error(e.index, err))
    return {
        "resourceType": "Bundle",
        "type": "transaction-response" if atomic else "batch-response",
        "entry": [results[i] for i in range(len(plan.entries))],
    }
