"""Reading and writing FHIR resources: versions, meta, index columns, history.

Plain keyword-only functions taking the session (the caller owns the transaction), so a
transaction Bundle can make many writes and commit or roll back once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from service.errors import FHIRError
from service.fhir.index import extract
from service.store.models import Resource, ResourceToken, ResourceVersion


@dataclass(frozen=True, slots=True)
class Stored:
    type: str
    id: str
    version_id: int
    last_updated: datetime  # naive UTC
    deleted: bool
    content: bytes  # the JSON body (with meta) as served
    patient_id: str | None = None

    @property
    def etag(self) -> str:
        return f'W/"{self.version_id}"'

    @property
    def location(self) -> str:
        return f"{self.type}/{self.id}/_history/{self.version_id}"

    def json(self) -> dict[str, Any]:
        return orjson.loads(self.content)  # type: ignore[no-any-return]


def fhir_instant(moment: datetime) -> str:
    """FHIR instant with millisecond precision, always in UTC."""
    return moment.replace(tzinfo=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _stored(row: Resource) -> Stored:
    return Stored(
        row.type, row.id, row.version_id, row.last_updated, row.deleted, row.content, row.patient_id
    )


def read(session: Session, resource_type: str, resource_id: str) -> Stored | None:
    row = session.get(Resource, (resource_type, resource_id))
    return _stored(row) if row is not None else None


def read_version(
    session: Session, resource_type: str, resource_id: str, version_id: int
) -> Stored | None:
    row = session.get(ResourceVersion, (resource_type, resource_id, version_id))
    if row is None:
        return None
    return Stored(
        row.type, row.id, row.version_id, row.last_updated, row.deleted, row.content or b""
    )


def read_many(session: Session, resource_type: str, ids: Iterable[str]) -> dict[str, Stored]:
    id_list = list(ids)
    if not id_list:
        return {}
    rows = session.scalars(
        select(Resource).where(Resource.type == resource_type, Resource.id.in_(id_list))
    )
    return {r.id: _stored(r) for r in rows if not r.deleted}


def check_if_match(current: Stored | None, if_match: str | None) -> None:
    """412 when the client's version is not the current one (optimistic locking)."""
    if if_match is None:
        return
    wanted = if_match.strip().removeprefix("W/").strip('"')
    if current is None or current.deleted:
        raise FHIRError.of(412, "conflict", "If-Match given but the resource does not exist")
    if wanted != str(current.version_id):
        raise FHIRError.of(
            412,
            "conflict",
            f"Version conflict: If-Match {wanted} but the current version is "
            f"{current.version_id}",
        )


def save(
    session: Session,
    *,
    resource_type: str,
    resource_id: str,
    resource: Mapping[str, Any],
    if_match: str | None = None,
    now: datetime | None = None,
) -> tuple[Stored, bool]:
    """Create or update; returns (stored, created). The body is kept as sent plus meta."""
    row = session.get(Resource, (resource_type, resource_id), with_for_update=True)
    current = _stored(row) if row is not None else None
    check_if_match(current, if_match)
    now = now or utcnow()
    version = (row.version_id + 1) if row is not None else 1
    body = dict(resource)
    body["id"] = resource_id
    meta = dict(body.get("meta") or {})
    meta["versionId"] = str(version)
    meta["lastUpdated"] = fhir_instant(now)
    # resourceType and id first, as FHIR servers conventionally serve them
    ordered = {"resourceType": resource_type, "id": resource_id, "meta": meta}
    ordered.update({k: v for k, v in body.items() if k not in ordered})
    content = orjson.dumps(ordered)
    idx = extract(resource_type, resource_id, ordered)
    created = row is None or row.deleted
    if row is None:
        row = Resource(type=resource_type, id=resource_id)
        session.add(row)
    else:
        session.execute(
            delete(ResourceToken).where(
                ResourceToken.type == resource_type, ResourceToken.id == resource_id
            )
        )
    row.version_id = version
    row.last_updated = now
    row.deleted = False
    row.patient_id = idx.patient_id
    row.status = idx.status
    row.date_start = idx.date.start if idx.date else None
    row.date_end = idx.date.end if idx.date else None
    row.content = content
    session.flush()
    if idx.tokens:
        session.add_all(
            [
                ResourceToken(
                    type=resource_type, id=resource_id, param=p, system=s[:255], code=c[:255]
                )
                for p, s, c in set(idx.tokens)
            ]
        )
    session.add(
        ResourceVersion(
            type=resource_type,
            id=resource_id,
            version_id=version,
            last_updated=now,
            method="POST" if created else "PUT",
            deleted=False,
            content=content,
        )
    )
    return _stored(row), created


def remove(
    session: Session, *, resource_type: str, resource_id: str, now: datetime | None = None
) -> Stored | None:
    """Delete (a tombstone version); returns the version that was current, None if none."""
    row = session.get(Resource, (resource_type, resource_id), with_for_update=True)
    if row is None or row.deleted:
        return None
    previous = _stored(row)
    now = now or utcnow()
    session.execute(
        delete(ResourceToken).where(
            ResourceToken.type == resource_type, ResourceToken.id == resource_id
        )
    )
    row.version_id += 1
    row.last_updated = now
    row.deleted = True
    session.add(
        ResourceVersion(
            type=resource_type,
            id=resource_id,
            version_id=row.version_id,
            last_updated=now,
            method="DELETE",
            deleted=True,
            content=None,
        )
    )
    return previous


def history(session: Session, resource_type: str, resource_id: str) -> Sequence[ResourceVersion]:
    return session.scalars(
        select(ResourceVersion)
        .where(ResourceVersion.type == resource_type, ResourceVersion.id == resource_id)
        .order_by(ResourceVersion.version_id.desc())
    ).all()


def load_patient_records(
    session: Session,
    patient_id: str,
    *,
    types: Iterable[str],
    observations_since: datetime | None = None,
) -> list[dict[str, Any]]:
    """The stored resources the rule engine needs for one patient.

    Conditions are all loaded (eligibility looks at the whole history); Observations only from
    `observations_since` (the rule set's look-back), plus undated ones, so the cost of an
    evaluation depends on this patient's recent data, not on the size of the database.
    """
    stmt = select(Resource.content).where(
        Resource.patient_id == patient_id,
        Resource.type.in_(list(types)),
        Resource.deleted.is_(False),
    )
    if observations_since is not None:
        stmt = stmt.where(
            (Resource.type != "Observation")
            | (Resource.date_end.is_(None))
            | (Resource.date_end >= observations_since)
        )
    return [orjson.loads(c) for c in session.scalars(stmt)]


def load_patient_resources(
    session: Session, patient_id: str, resource_type: str
) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Resource.content).where(
            Resource.patient_id == patient_id,
            Resource.type == resource_type,
            Resource.deleted.is_(False),
        )
    )
    return [orjson.loads(c) for c in rows]
