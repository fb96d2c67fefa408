"""FHIR interactions (create, conditional create, update, delete, read, search) as plain
functions over a session. Routes and Bundle processing both call these, so a write behaves
the same whether it arrives alone or inside a transaction.

Each write records which patients it touched in a `WriteContext`; the `UnitOfWork` the caller
runs them in (`service.unit_of_work`) turns that into outbox rows in the same transaction when
it commits (one evaluation per patient per request, never one per resource).

The store refuses in its own terms (`service.store.errors`); `fhir_error` is the one place
those become the contract's answers (412, 409), for routes, Bundles and the worklist alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson
from sqlalchemy.orm import Session

from service import audit
from service.auth import Interaction, Principal
from service.errors import FHIRError, bad_request, conflict, not_found, precondition_failed
from service.fhir.registry import READ_ONLY_TYPES, is_served
from service.fhir.request_url import RequestUrlError, conditional_criteria
from service.fhir.search import SearchQuery, parse_search
from service.fhir.validate import require_valid
from service.store import resources as store
from service.store.errors import Conflict, StoreError, VersionMismatch
from service.store.search import search as run_search
from service.subscriptions import access as subscription_access
from service.transaction_plan import new_id, target_id

# Writes to these types ask for the patient to be evaluated again: clinical data, and the
# nurse's acknowledgement/closing of alerts.
TRIGGERING_TYPES = frozenset({"Observation", "Condition", "Flag", "CommunicationRequest"})


@dataclass
class WriteContext:
    principal: Principal
    as_of: datetime | None = None
    patients: set[str] = field(default_factory=set)
    default_count: int = 50
    max_count: int = 1000

    def touched(self, stored: store.Stored, previous_patient: str | None = None) -> None:
        if stored.type in TRIGGERING_TYPES:
            for p in (stored.patient_id, previous_patient):
                if p:
                    self.patients.add(p)


def fhir_error(exc: StoreError) -> FHIRError:
    """The contract's answer to a store refusal: a stale If-Match is 412, a create that lost
    a race is 409 (the client may retry)."""
    if isinstance(exc, VersionMismatch):
        return precondition_failed(str(exc))
    if isinstance(exc, Conflict):
        return conflict(str(exc))
    return FHIRError.of(500, "exception", "The store refused the write")


@contextmanager
def _store_errors() -> Iterator[None]:
    try:
        yield
    except StoreError as exc:
        raise fhir_error(exc) from None


def require_served(resource_type: str) -> None:
    if not is_served(resource_type):
        raise FHIRError.of(
            404, "not-supported", f"Resource type '{resource_type}' is not served here"
        )


def require_writable(resource_type: str) -> None:
    """405 for types only the server writes (AuditEvent: an audit trail clients cannot edit)."""
    if resource_type in READ_ONLY_TYPES:
        raise FHIRError.of(
            405, "not-supported", f"{resource_type} is written by the server only (read, search)"
        )


def query_items(query: str) -> list[tuple[str, str]]:
    return parse_qsl(query, keep_blank_values=True)


def search(
    session: Session, ctx: WriteContext, resource_type: str, items: Sequence[tuple[str, str]]
) -> tuple[SearchQuery, list[bytes], int | None]:
    require_served(resource_type)
    ctx.principal.require(resource_type, "search")
    q = parse_search(resource_type, items, default_count=ctx.default_count, max_count=ctx.max_count)
    rows, total = run_search(session, q)
    return q, rows, total


def match_ids(session: Session, resource_type: str, criteria: str) -> list[str]:
    """Ids of the stored resources the criteria match; two at most (one is all a conditional
    interaction needs to tell "none", "one" and "several" apart)."""
    items = [(k, v) for k, v in query_items(criteria.lstrip("?")) if not k.startswith("_count")]
    if not items:
        raise bad_request("Conditional criteria are empty")
    q = parse_search(resource_type, [*items, ("_count", "2")], default_count=2)
    rows, _total = run_search(session, q)
    return [str(orjson.loads(r)["id"]) for r in rows]


def _one_match(
    session: Session,
    ctx: WriteContext,
    resource_type: str,
    criteria: str,
    rights: tuple[Interaction, ...],
    several: FHIRError,
) -> str | None:
    """The one id the criteria match (None: none), after every right in `rights` is checked,
    so a token that lacks one cannot learn whether a record exists; `several` when more do."""
    require_served(resource_type)
    for right in rights:
        ctx.principal.require(resource_type, right)
    found = match_ids(session, resource_type, criteria)
    if len(found) > 1:
        raise several
    return found[0] if found else None


def conditional_create_match(
    session: Session, ctx: WriteContext, resource_type: str, criteria: str
) -> str | None:
    """The id an If-None-Exist / ifNoneExist matches, or None (create). Needs create rights
    only: the EHR feed holds write scopes, and the caller decides whether the match may be
    shown (read rights) or only acknowledged."""
    several = FHIRError.of(412, "duplicate", "If-None-Exist criteria match more than one resource")
    return _one_match(session, ctx, resource_type, criteria, ("create",), several)


def conditional_update_target(
    session: Session, ctx: WriteContext, resource_type: str, criteria: str, body_id: str | None
) -> str | None:
    """The id a conditional update writes: the one match, else the body's id (None: a new id).

    Create and update rights are both required before anything is matched, so a token that
    may only create (or only update) cannot learn from the answer whether a record exists.
    """
    several = FHIRError.of(412, "multiple-matches", "Conditional update matches more than one")
    found = _one_match(session, ctx, resource_type, criteria, ("create", "update"), several)
    if found is not None:
        if body_id is not None and body_id != found:
            raise bad_request(
                "The resource id does not match the resource the criteria found", ("id",)
            )
        return found
    if body_id is not None:
        current = store.read(session, resource_type, body_id)
        if current is not None and not current.deleted:
            raise FHIRError.of(
                409,
                "conflict",
                "No resource matches the criteria, but one with the resource's id exists",
            )
    return None


def conditional_delete_target(
    session: Session, ctx: WriteContext, resource_type: str, criteria: str
) -> str | None:
    """The one id the criteria match (None: nothing to delete). Deleting by criteria is a
    search: it needs search rights as well as delete rights, checked before matching."""
    several = FHIRError.of(412, "multiple-matches", "Conditional delete matches more than one")
    return _one_match(session, ctx, resource_type, criteria, ("search", "delete"), several)


def _write(
    session: Session,
    ctx: WriteContext,
    resource_type: str,
    resource_id: str,
    resource: Any,
    current: store.Stored | None,
    *,
    if_match: str | None = None,
) -> tuple[store.Stored, bool]:
    """Store one version (`current`: the row as locked, None for a new id); returns (stored,
    created). The store's refusals become FHIR errors, the patients the write touches are
    recorded for the outbox, and (issue 10) a Subscription's writer must be able to read what
    it will be sent and is recorded as its owner (re-checked at every delivery)."""
    require_writable(resource_type)
    with _store_errors():
        stored, created = store.save(
            session,
            resource_type=resource_type,
            resource_id=resource_id,
            resource=resource,
            if_match=if_match,
            current=current,
        )
    ctx.touched(stored, current.patient_id if current else None)
    if stored.type in ("Flag", "CommunicationRequest"):  # issue 13: who did what to an alert
        audit.record(
            session,
            agent=ctx.principal.subject,
            resource_type=stored.type,
            resource_id=stored.id,
            version=stored.version_id,
            previous=current.json() if current is not None and not current.deleted else None,
            new=resource,
            patient=stored.patient_id,
        )
    if stored.type == "Subscription":
        subscription_access.authorize_write(session, ctx.principal, stored.id, stored.json())
    return stored, created


def create(
    session: Session,
    ctx: WriteContext,
    resource_type: str,
    resource: Any,
    *,
    if_none_exist: str | None = None,
    assigned_id: str | None = None,
    validated: bool = False,
) -> tuple[store.Stored, int]:
    """POST: server-assigned id; with If-None-Exist, returns the existing match (200).

    `validated`: the caller already ran `require_valid` on this very body, outside the write
    transaction (routes, Bundles), so the CPU-heavy model validation never holds the write
    lock; it is not repeated here."""
    require_served(resource_type)
    ctx.principal.require(resource_type, "create")
    if not validated:
        require_valid(resource, expected_type=resource_type)
    if if_none_exist:
        try:
            criteria = conditional_criteria(resource_type, if_none_exist)
        except RequestUrlError as exc:
            raise bad_request(f"If-None-Exist: {exc}") from None
        found = conditional_create_match(session, ctx, resource_type, criteria)
        if found:
            existing = store.read(session, resource_type, found)
            assert existing is not None
            return existing, 200
    # A server-generated UUID (or the planner's): no existing row to look up.
    stored, _ = _write(session, ctx, resource_type, assigned_id or new_id(), resource, None)
    return stored, 201


# Types whose writes do more than store a version (an audit trail, Subscription ownership):
# never written in batches, always one by one through `_write`.
_WRITE_EXTRAS = frozenset({"Flag", "CommunicationRequest", "Subscription"})


def batchable(resource_type: str) -> bool:
    """Whether a plain create of this type may go through `create_new_many`."""
    return resource_type not in _WRITE_EXTRAS


def check_create(
    ctx: WriteContext, resource_type: str, resource: Any, *, validated: bool = False
) -> None:
    """What `create` checks before it writes a new id, in the same order (served type, create
    rights, content, a type clients may write), for a caller that then writes in batches."""
    require_served(resource_type)
    ctx.principal.require(resource_type, "create")
    if not validated:
        require_valid(resource, expected_type=resource_type)
    require_writable(resource_type)


def check_update_new(
    ctx: WriteContext, resource_type: str, resource: Any, *, validated: bool = False
) -> None:
    """What `update` checks before it writes an id that does not exist yet, in the same order
    (served type, content, create rights, a type clients may write); the body's id is the
    url's (the Bundle planner made sure)."""
    require_served(resource_type)
    if not validated:
        require_valid(resource, expected_type=resource_type)
    ctx.principal.require(resource_type, "create")
    require_writable(resource_type)


def create_new_many(
    session: Session, ctx: WriteContext, items: Sequence[tuple[str, str, Any]]
) -> list[store.Stored]:
    """Store new resources `(type, new id, body)` that passed `check_create`, all of
    `batchable` types, with one multi-row INSERT per table (a transaction Bundle's creates);
    the patients they touch are recorded for the outbox as `create` records them."""
    assert all(batchable(rtype) for rtype, _id, _r in items)
    with _store_errors():
        stored = store.save_new_many(session, items)
    for one in stored:
        ctx.touched(one)
    return stored


def update(
    session: Session,
    ctx: WriteContext,
    resource_type: str,
    resource_id: str,
    resource: Any,
    *,
    if_match: str | None = None,
    validated: bool = False,
) -> tuple[store.Stored, int]:
    """PUT with a client id: update, or create with that id (201). `validated`: as for
    `create`, the caller validated this body before the transaction began."""
    require_served(resource_type)
    if not validated:
        require_valid(resource, expected_type=resource_type)
    body_id = resource.get("id")
    if body_id is None:
        raise bad_request("The resource in a PUT must carry its id", ("id",))
    if body_id != resource_id:
        raise bad_request(
            f"The resource id '{body_id}' does not match the URL id '{resource_id}'", ("id",)
        )
    current = store.read_for_update(session, resource_type, resource_id)
    exists = current is not None and not current.deleted
    ctx.principal.require(resource_type, "update" if exists else "create")
    stored, created = _write(
        session, ctx, resource_type, resource_id, resource, current, if_match=if_match
    )
    return stored, 201 if created else 200


def conditional_update(
    session: Session,
    ctx: WriteContext,
    resource_type: str,
    criteria: str,
    resource: Any,
    *,
    if_match: str | None = None,
    validated: bool = False,
) -> tuple[store.Stored, int]:
    """PUT Type?criteria (R4 http.html#cond-update): one match is updated, none creates (with
    the body's id if it has one), several are a 412. `validated`: as for `update`, judged
    with the id it will be stored under (`is_valid(..., server_assigns_id=...)`)."""
    if not isinstance(resource, Mapping):
        raise bad_request("A resource must be a JSON object")
    body_id = resource.get("id")
    if body_id is not None and not isinstance(body_id, str):
        raise bad_request("The resource id must be a string", ("id",))
    target = conditional_update_target(session, ctx, resource_type, criteria, body_id)
    rid = target_id(target, body_id)
    return update(
        session,
        ctx,
        resource_type,
        rid,
        {**resource, "id": rid},
        if_match=if_match,
        validated=validated,
    )


def patch(
    session: Session,
    ctx: WriteContext,
    resource_type: str,
    resource_id: str,
    apply: Callable[[dict[str, Any]], dict[str, Any]],
    *,
    if_match: str | None = None,
) -> store.Stored:
    """PATCH: `apply` turns the current JSON into the new one (JSON Patch or Merge Patch,
    `service.api.patch`); the result is validated and stored like any update. If-Match is
    checked before the patch is applied; the update then requires the version that was read,
    so a concurrent change between the two is a 412, never a lost update."""
    current = read(session, ctx, resource_type, resource_id)
    with _store_errors():
        store.check_if_match(resource_type, resource_id, current, if_match)
    patched = apply(current.json())
    if patched.get("id") != resource_id or patched.get("resourceType") != resource_type:
        raise bad_request("PATCH may not change resourceType or id")
    stored, _ = update(
        session, ctx, resource_type, resource_id, patched, if_match=str(current.version_id)
    )
    return stored


def delete(
    session: Session, ctx: WriteContext, resource_type: str, resource_id: str
) -> store.Stored | None:
    require_served(resource_type)
    require_writable(resource_type)
    ctx.principal.require(resource_type, "delete")
    previous = store.remove(session, resource_type=resource_type, resource_id=resource_id)
    if previous is not None:
        ctx.touched(previous)
    return previous


def conditional_delete(
    session: Session, ctx: WriteContext, resource_type: str, criteria: str
) -> int:
    """DELETE Type?criteria: deletes the single match; none is not an error (0)."""
    target = conditional_delete_target(session, ctx, resource_type, criteria)
    if target is not None:
        delete(session, ctx, resource_type, target)
    return 0 if target is None else 1


def read(session: Session, ctx: WriteContext, resource_type: str, resource_id: str) -> store.Stored:
    require_served(resource_type)
    ctx.principal.require(resource_type, "read")
    stored = store.read(session, resource_type, resource_id)
    if stored is None:
        raise not_found(f"{resource_type}/{resource_id} is not known")
    if stored.deleted:
        raise FHIRError.of(410, "deleted", f"{resource_type}/{resource_id} has been deleted")
    return stored


def vread(
    session: Session, ctx: WriteContext, resource_type: str, resource_id: str, version: str
) -> store.Stored:
    require_served(resource_type)
    ctx.principal.require(resource_type, "read")
    try:
        vid = int(version)
    except ValueError:
        raise not_found(f"Version '{version}' is not known") from None
    if not 1 <= vid <= 2**31 - 1:  # the column is a 32-bit INTEGER; larger never exists
        raise not_found(f"Version '{version}' is not known")
    stored = store.read_version(session, resource_type, resource_id, vid)
    if stored is None:
        raise not_found(f"{resource_type}/{resource_id}/_history/{version} is not known")
    if stored.deleted:
        raise FHIRError.of(410, "deleted", "That version is a deletion")
    return stored
