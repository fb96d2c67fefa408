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
from service.fhir.registry import is_served
from service.fhir.validate import is_valid
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


def prevalidate(bundle: Mapping[str, Any]) -> frozenset[int]:
    """Indexes of the POST/PUT entries whose resource is valid as it will be stored, judged
    before the Bundle's transaction opens (validation is most of a write's CPU, and must not
    hold the database write lock). The planner later sets ids and rewrites references, which
    keeps a valid resource valid (ids and `Type/id` references it writes are well-formed).
    An entry not listed is validated where it always was, when it runs, so its refusal and
    the order of refusals in a transaction are unchanged."""
    raw = bundle.get("entry")
    if not isinstance(raw, list):
        return frozenset()
    valid = set()
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping):
            continue
        req, resource = item.get("request"), item.get("resource")
        if not isinstance(req, Mapping) or not isinstance(resource, Mapping):
            continue
        method = str(req.get("method", "")).upper()
        rtype = resource.get("resourceType")
        if method not in ("POST", "PUT") or not isinstance(rtype, str) or not is_served(rtype):
            continue
        # POST: the server's id replaces the body's; PUT without an id: the match's or a new one.
        assigns = method == "POST" or resource.get("id") is None
        if is_valid(resource, expected_type=rtype, server_assigns_id=assigns):
            valid.add(i)
    return frozenset(valid)


def _run_entry(
    session: Session,
    ctx: WriteContext,
    e: PlannedEntry,
    search: _Search,
    valid: frozenset[int] = frozenset(),
) -> dict[str, Any]:
    t = e.target
    assert t is not None
    rtype = t.resource_type
    if e.action == "skip":
        return _skipped(rtype)
    if e.action == "create":
        assert e.resource_id is not None
        stored, status = interactions.create(
            session, ctx, rtype, e.resource, assigned_id=e.resource_id, validated=e.index in valid
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
            session,
            ctx,
            rtype,
            e.resource_id,
            e.resource,
            if_match=e.if_match,
            validated=e.index in valid,
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


class _Creates:
    """A transaction's consecutive plain creates, written together by
    `interactions.create_new_many`: POSTs (new server-assigned ids) and PUTs of ids that do not
    exist yet (without ifMatch). Each entry is checked as `create` / `update` checks it when
    it is taken, so the first refusal is still that entry's, raised before anything after it
    runs; nothing is written until `flush`, which the caller runs before any other entry."""

    def __init__(
        self,
        session: Session,
        ctx: WriteContext,
        valid: frozenset[int],
        results: dict[int, dict[str, Any]],
        entries: list[PlannedEntry],
    ) -> None:
        self._session, self._ctx, self._valid, self._results = session, ctx, valid, results
        self._entries = entries
        self._pending: list[PlannedEntry] = []
        self._existing: set[tuple[str, str]] | None = None

    def _is_new(self, e: PlannedEntry) -> bool:
        """Whether a PUT entry's id has no row yet. All the Bundle's PUT ids are looked up
        (and locked) in one query per type, when the first one is taken."""
        if self._existing is None:
            keys = [
                (x.resource_type, x.resource_id)
                for x in self._entries
                if x.error is None and x.action == "update" and x.resource_id is not None
            ]
            self._existing = store.lock_existing(self._session, keys)
        assert e.resource_id is not None
        return (e.resource_type, e.resource_id) not in self._existing

    def take(self, e: PlannedEntry) -> bool:
        """Queue `e` if it is a plain create (checking it now); False: run it on its own."""
        if e.action not in ("create", "update") or not interactions.batchable(e.resource_type):
            return False
        if e.action == "update" and (e.if_match is not None or not self._is_new(e)):
            return False
        assert e.resource_id is not None and e.resource is not None
        check = interactions.check_create if e.action == "create" else interactions.check_update_new
        try:
            check(self._ctx, e.resource_type, e.resource, validated=e.index in self._valid)
        except FHIRError as err:
            raise entry_error(e.index, err) from None
        self._pending.append(e)
        return True

    def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        items = [(e.resource_type, e.resource_id or "", e.resource) for e in pending]
        try:
            stored = interactions.create_new_many(self._session, self._ctx, items)
        except FHIRError as err:  # a lost create race: named on the first entry of the batch
            raise entry_error(pending[0].index, err) from None
        for e, one in zip(pending, stored, strict=True):
            self._results[e.index] = _written(one, 201)


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
    valid = prevalidate(bundle)  # outside the transaction: no lock held while this runs
    results: dict[int, dict[str, Any]] = {}
    with uow(ctx) as session:
        plan = plan_bundle(bundle, StoreResolver(session, ctx), base=base, atomic=atomic)
        creates = _Creates(session, ctx, valid, results, plan.entries)
        for e in plan.ordered:
            if e.error is not None:
                results[e.index] = _failed(e.error)
                continue
            if atomic:
                if creates.take(e):
                    continue
                creates.flush()  # in order: what this entry reads or writes may depend on them
                try:
                    results[e.index] = _run_entry(session, ctx, e, search, valid)
                except FHIRError as err:
                    raise entry_error(e.index, err) from None
                continue
            before = set(ctx.patients)
            try:
                with session.begin_nested():
                    results[e.index] = _run_entry(session, ctx, e, search, valid)
            except FHIRError as err:
                ctx.patients = before  # the entry's savepoint was rolled back: no evaluation
                results[e.index] = _failed(entry_error(e.index, err))
        creates.flush()
    return {
        "resourceType": "Bundle",
        "type": "transaction-response" if atomic else "batch-response",
        "entry": [results[i] for i in range(len(plan.entries))],
    }
