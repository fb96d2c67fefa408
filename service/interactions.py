"""FHIR interactions (create, conditional create, update, delete, read, search) as plain
functions over a session. Routes and Bundle processing both call these, so a write behaves
the same whether it arrives alone or inside a transaction.

Each write records which patients it touched in a `WriteContext`; the caller turns that into
outbox rows in the same transaction (one evaluation per patient per request, never one per
resource).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson
from sqlalchemy.orm import Session

from service.auth import Principal
from service.errors import FHIRError, bad_request, not_found
from service.fhir.registry import is_served
from service.fhir.search import SearchQuery, parse_search
from service.fhir.validate import require_valid
from service.store import outbox
from service.store import resources as store
from service.store.search import search as run_search

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

    def flush_outbox(self, session: Session) -> None:
        if self.patients:
            outbox.enqueue(session, self.patients, as_of=self.as_of)
            self.patients.clear()


def require_served(resource_type: str) -> None:
    if not is_served(resource_type):
        raise FHIRError.of(
            404, "not-supported", f"Resource type '{resource_type}' is not served here"
        )


def new_id() -> str:
    return str(uuid.uuid4())


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


def _matches(
    session: Session, ctx: WriteContext, resource_type: str, criteria: str
) -> list[dict[str, Any]]:
    items = [(k, v) for k, v in query_items(criteria.lstrip("?")) if not k.startswith("_count")]
    if not items:
        raise bad_request("Conditional criteria are empty")
    q = parse_search(resource_type, [*items, ("_count", "2")], default_count=2)
    rows, _total = run_search(session, q)
    return [orjson.loads(r) for r in rows]


def create(
    session: Session,
    ctx: WriteContext,
    resource_type: str,
    resource: Any,
    *,
    if_none_exist: str | None = None,
    assigned_id: str | None = None,
) -> tuple[store.Stored, int]:
    """POST: server-assigned id; with If-None-Exist, returns the existing match (200)."""
    require_served(resource_type)
    ctx.principal.require(resource_type, "create")
    require_valid(resource, expected_type=resource_type)
    if if_none_exist:
        found = _matches(session, ctx, resource_type, if_none_exist)
        if len(found) > 1:
            raise FHIRError.of(
                412, "duplicate", "If-None-Exist criteria match more than one resource"
            )
        if found:
            existing = store.read(session, resource_type, found[0]["id"])
            assert existing is not None
            return existing, 200
    stored, _ = store.save(
        session,
        resource_type=resource_type,
        resource_id=assigned_id or new_id(),
        resource=resource,
        current=None,  # server-generated UUID: no existing row to look up
    )
    ctx.touched(stored)
    return stored, 201


def update(
    session: Session,
    ctx: WriteContext,
    resource_type: str,
    resource_id: str,
    resource: Any,
    *,
    if_match: str | None = None,
) -> tuple[store.Stored, int]:
    """PUT with a client id: update, or create with that id (201)."""
    require_served(resource_type)
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
    stored, created = store.save(
        session,
        resource_type=resource_type,
        resource_id=resource_id,
        resource=resource,
        if_match=if_match,
        current=current,
    )
    ctx.touched(stored, current.patient_id if current else None)
    return stored, 201 if created else 200


def conditional_update(
    session: Session, ctx: WriteContext, resource_type: str, criteria: str, resource: Any
) -> tuple[store.Stored, int]:
    require_served(resource_type)
    found = _matches(session, ctx, resource_type, criteria)
    if len(found) > 1:
        raise FHIRError.of(412, "multiple-matches", "Conditional update matches more than one")
    if not isinstance(resource, Mapping):
        raise bad_request("A resource must be a JSON object")
    target = found[0]["id"] if found else (resource.get("id") or new_id())
    body = {**resource, "id": target}
    return update(session, ctx, resource_type, target, body)


def delete(
    session: Session, ctx: WriteContext, resource_type: str, resource_id: str
) -> store.Stored | None:
    require_served(resource_type)
    ctx.principal.require(resource_type, "delete")
    previous = store.remove(session, resource_type=resource_type, resource_id=resource_id)
    if previous is not None:
        ctx.touched(previous)
    return previous


def conditional_delete(
    session: Session, ctx: WriteContext, resource_type: str, criteria: str
) -> int:
    require_served(resource_type)
    found = _matches(session, ctx, resource_type, criteria)
    if len(found) > 1:
        raise FHIRError.of(412, "multiple-matches", "Conditional delete matches more than one")
    for r in found:
        delete(session, ctx, resource_type, r["id"])
    return len(found)


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
    stored = store.read_version(session, resource_type, resource_id, vid)
    if stored is None:
        raise not_found(f"{resource_type}/{resource_id}/_history/{version} is not known")
    if stored.deleted:
        raise FHIRError.of(410, "deleted", "That version is a deletion")
    return stored
