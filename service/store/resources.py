"""Reading and writing FHIR resources: versions, meta, index columns, history.

Plain keyword-only functions taking the session (the caller owns the transaction), so a
transaction Bundle can make many writes and commit or roll back once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum, auto
from typing import Any, TypeVar, cast

import orjson
from sqlalchemy import Connection, Table, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.fhir.index import IndexEntry, extract, normalize_string
from service.store.errors import Conflict, VersionMismatch
from service.store.hooks import save_hook
from service.store.models import Resource, ResourceString, ResourceToken, ResourceVersion


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


T = TypeVar("T")


def fhir_instant(moment: datetime) -> str:
    """FHIR instant with millisecond precision, always in UTC."""
    return moment.replace(tzinfo=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def read(session: Session, resource_type: str, resource_id: str) -> Stored | None:
    return _select_one(session, _SELECT_CURRENT, resource_type, resource_id)


def _select_one(
    session: Session, statement: Any, resource_type: str, resource_id: str
) -> Stored | None:
    key = {"k_type": resource_type, "k_id": resource_id}
    row = session.connection().execute(statement, key).first()
    return Stored(*row) if row is not None else None


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
    rows = session.connection().execute(
        select(*_COLUMNS).where(_R.c.type == resource_type, _R.c.id.in_(id_list))
    )
    return {r.id: Stored(*r) for r in rows if not r.deleted}


def lock_existing(session: Session, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of the `(type, id)` keys have a row (deleted ones included), locked until the
    transaction ends like `read_for_update` locks one: a Bundle learns in one query per type
    which of its PUTs create a new id (those it may write with `save_new_many`)."""
    by_type: dict[str, list[str]] = {}
    for rtype, rid in keys:
        by_type.setdefault(rtype, []).append(rid)
    found: set[tuple[str, str]] = set()
    conn = session.connection()
    for rtype, ids in by_type.items():
        stmt = select(_R.c.type, _R.c.id).where(_R.c.type == rtype, _R.c.id.in_(ids))
        found.update((r.type, r.id) for r in conn.execute(stmt.with_for_update()))
    return found


def check_if_match(
    resource_type: str, resource_id: str, current: Stored | None, if_match: str | None
) -> None:
    """`VersionMismatch` when the writer's version is not the current one (optimistic
    locking); the FHIR layer answers it with 412."""
    if if_match is None:
        return
    wanted = if_match.strip().removeprefix("W/").strip('"')
    if current is None or current.deleted:
        raise VersionMismatch(resource_type, resource_id, expected=wanted, current=None)
    if wanted != str(current.version_id):
        raise VersionMismatch(
            resource_type, resource_id, expected=wanted, current=current.version_id
        )


# Statements built once: per-call construction and cache-key generation cost more than the
# SQL itself on the ingest path.
# Table-level (Core) statements run on the session's connection skip the ORM's bulk layer.
_R: Table = Resource.__table__  # type: ignore[assignment]
_T: Table = ResourceToken.__table__  # type: ignore[assignment]
_V: Table = ResourceVersion.__table__  # type: ignore[assignment]
_S: Table = ResourceString.__table__  # type: ignore[assignment]
_INSERT_RESOURCE = _R.insert()
_INSERT_TOKEN = _T.insert()
_INSERT_VERSION = _V.insert()
_UPDATE_RESOURCE = _R.update().where(_R.c.type == bindparam("k_type"), _R.c.id == bindparam("k_id"))
_COLUMNS = (
    _R.c.type,
    _R.c.id,
    _R.c.version_id,
    _R.c.last_updated,
    _R.c.deleted,
    _R.c.content,
    _R.c.patient_id,
)
_SELECT_CURRENT = select(*_COLUMNS).where(
    _R.c.type == bindparam("k_type"), _R.c.id == bindparam("k_id")
)
_SELECT_CURRENT_FOR_UPDATE = _SELECT_CURRENT.with_for_update()
_DELETE_TOKENS = _T.delete().where(_T.c.type == bindparam("k_type"), _T.c.id == bindparam("k_id"))
_INSERT_STRING = _S.insert()
_DELETE_STRINGS = _S.delete().where(_S.c.type == bindparam("k_type"), _S.c.id == bindparam("k_id"))


class _Lookup(Enum):
    LOOKUP = auto()


def read_for_update(session: Session, resource_type: str, resource_id: str) -> Stored | None:
    """The current row, locked until the transaction ends (deleted ones included)."""
    return _select_one(session, _SELECT_CURRENT_FOR_UPDATE, resource_type, resource_id)


def _record_version(
    conn: Connection,
    resource_type: str,
    resource_id: str,
    version: int,
    now: datetime,
    method: str,
    content: bytes | None,
) -> None:
    """One row of the history (vread, _history): every version, deletions as tombstones."""
    conn.execute(
        _INSERT_VERSION, _version_row(resource_type, resource_id, version, now, method, content)
    )


def _version_row(
    resource_type: str,
    resource_id: str,
    version: int,
    now: datetime,
    method: str,
    content: bytes | None,
) -> dict[str, Any]:
    return {
        "type": resource_type,
        "id": resource_id,
        "version_id": version,
        "last_updated": now,
        "method": method,
        "deleted": content is None,
        "content": content,
    }


def save(
    session: Session,
    *,
    resource_type: str,
    resource_id: str,
    resource: Mapping[str, Any],
    if_match: str | None = None,
    now: datetime | None = None,
    current: Stored | _Lookup | None = _Lookup.LOOKUP,
) -> tuple[Stored, bool]:
    """Create or update; returns (stored, created). The body is kept as sent plus meta.

    Core statements, not the ORM unit of work: this is the ingest hot path (ORM flushes cost
    several times the FHIR validation). `current` is the row as the caller already locked it
    with `read_for_update` (None for an id the server just generated); by default it is
    looked up and locked here.

    Raises `VersionMismatch` (if_match is not the current version) and `Conflict` (a
    concurrent transaction created the same resource first); whatever the installed write
    hook raises (a Subscription it refuses) passes through.
    """
    if current is _Lookup.LOOKUP:
        current = read_for_update(session, resource_type, resource_id)
    check_if_match(resource_type, resource_id, current, if_match)
    now = now or utcnow()
    version = (current.version_id + 1) if current is not None else 1
    previous = current.content if current is not None and not current.deleted else None
    content, idx = _prepare(session, resource_type, resource_id, resource, version, now, previous)
    created = current is None or current.deleted
    values = _resource_values(version, now, content, idx)
    key = {"k_type": resource_type, "k_id": resource_id}
    conn = session.connection()
    if current is None:
        try:
            conn.execute(_INSERT_RESOURCE, {"type": resource_type, "id": resource_id, **values})
        except IntegrityError:
            # PostgreSQL: another transaction inserted this id after our lookup and committed
            # while we waited on its row; this transaction is aborted and must roll back.
            raise Conflict(resource_type, resource_id) from None
    else:
        conn.execute(_DELETE_TOKENS, key)
        if resource_type == "Patient":  # the only type with string search values
            conn.execute(_DELETE_STRINGS, key)
        conn.execute(_UPDATE_RESOURCE, {**key, **values})
    if idx.tokens:
        conn.execute(_INSERT_TOKEN, token_rows(resource_type, resource_id, idx.tokens))
    if idx.strings:
        conn.execute(_INSERT_STRING, string_rows(resource_type, resource_id, idx.strings))
    _record_version(
        conn, resource_type, resource_id, version, now, "POST" if created else "PUT", content
    )
    stored = Stored(resource_type, resource_id, version, now, False, content, idx.patient_id)
    return stored, created


def _prepare(
    session: Session,
    resource_type: str,
    resource_id: str,
    resource: Mapping[str, Any],
    version: int,
    now: datetime,
    previous: bytes | None,
) -> tuple[bytes, IndexEntry]:
    """The bytes to store (the body as sent, id and meta set, passed through the write hook)
    and their index values: one recipe for `save` and `save_new_many`, so a resource is
    stored byte for byte alike whichever path wrote it."""
    meta = dict(resource.get("meta") or {})
    meta["versionId"] = str(version)
    meta["lastUpdated"] = fhir_instant(now)
    # resourceType and id first, as FHIR servers conventionally serve them
    ordered: dict[str, Any] = {"resourceType": resource_type, "id": resource_id, "meta": meta}
    ordered.update({k: v for k, v in resource.items() if k not in ordered})
    ordered = save_hook()(
        session,
        resource_type=resource_type,
        resource_id=resource_id,
        version_id=version,
        resource=ordered,
        previous=previous,
        now=now,
    )  # Subscription: accepted/normalised; Flag, CommunicationRequest: notifications recorded
    forget_type_cache(session, resource_type)  # every write goes through here
    return orjson.dumps(ordered), extract(resource_type, resource_id, ordered)


def type_cache(session: Session, resource_type: str, build: Callable[[], T]) -> T:
    """A value this transaction derived from the stored resources of one type (e.g. the
    Subscriptions that collect notifications, which every alert write would otherwise read
    and parse again), kept in the session until a resource of that type is written or
    removed in it (`forget_type_cache`). Sessions live for one transaction."""
    key = ("type-cache", resource_type)
    if key not in session.info:
        session.info[key] = build()
    return cast(T, session.info[key])


def forget_type_cache(session: Session, resource_type: str) -> None:
    session.info.pop(("type-cache", resource_type), None)


def _resource_values(
    version: int, now: datetime, content: bytes, idx: IndexEntry
) -> dict[str, Any]:
    return {
        "version_id": version,
        "last_updated": now,
        "deleted": False,
        "patient_id": idx.patient_id,
        "status": idx.status,
        "date_start": idx.date.start if idx.date else None,
        "date_end": idx.date.end if idx.date else None,
        "content": content,
    }


def save_new_many(
    session: Session,
    items: Sequence[tuple[str, str, Mapping[str, Any]]],
    *,
    now: datetime | None = None,
) -> list[Stored]:
    """Create many resources whose ids are new (server-assigned, or checked absent and locked
    by the caller): version 1 of each, stored exactly as `save` stores it, with one multi-row
    INSERT per table (resources, history, tokens, strings) instead of four statements per
    resource; on the ingest path of a Bundle the per-statement overhead cost more than the
    SQL. The write hook still runs once per resource. A `Conflict` (another transaction
    created one of the ids first; PostgreSQL aborts this transaction) names the first item,
    as a multi-row INSERT does not tell which row collided.
    """
    if not items:
        return []
    now = now or utcnow()
    resources: list[dict[str, Any]] = []
    versions: list[dict[str, Any]] = []
    tokens: list[dict[str, str]] = []
    strings: list[dict[str, str]] = []
    out: list[Stored] = []
    for resource_type, resource_id, resource in items:
        content, idx = _prepare(session, resource_type, resource_id, resource, 1, now, None)
        resources.append(
            {"type": resource_type, "id": resource_id, **_resource_values(1, now, content, idx)}
        )
        versions.append(_version_row(resource_type, resource_id, 1, now, "POST", content))
        if idx.tokens:
            tokens += token_rows(resource_type, resource_id, idx.tokens)
        if idx.strings:
            strings += string_rows(resource_type, resource_id, idx.strings)
        out.append(Stored(resource_type, resource_id, 1, now, False, content, idx.patient_id))
    conn = session.connection()
    try:
        conn.execute(_INSERT_RESOURCE, resources)
    except IntegrityError:
        raise Conflict(items[0][0], items[0][1]) from None
    if tokens:
        conn.execute(_INSERT_TOKEN, tokens)
    if strings:
        conn.execute(_INSERT_STRING, strings)
    conn.execute(_INSERT_VERSION, versions)
    return out


def token_rows(
    resource_type: str, resource_id: str, tokens: Iterable[tuple[str, str, str]]
) -> list[dict[str, str]]:
    """Rows of `resource_tokens` for one resource."""
    return [
        {"type": resource_type, "id": resource_id, "param": p, "system": s[:255], "code": c[:255]}
        for p, s, c in sorted(set(tokens))
    ]


def string_rows(
    resource_type: str, resource_id: str, strings: Iterable[tuple[str, str]]
) -> list[dict[str, str]]:
    """Rows of `resource_strings` for one resource (also used by the 0005 backfill)."""
    return [
        {
            "type": resource_type,
            "id": resource_id,
            "param": p,
            "norm": normalize_string(v)[:255],
            "exact": v[:255],
        }
        for p, v in sorted(set(strings))
    ]


def remove(
    session: Session, *, resource_type: str, resource_id: str, now: datetime | None = None
) -> Stored | None:
    """Delete (a tombstone version); returns the version that was current, None if none."""
    forget_type_cache(session, resource_type)
    current = read_for_update(session, resource_type, resource_id)
    if current is None or current.deleted:
        return None
    now = now or utcnow()
    version = current.version_id + 1
    key = {"k_type": resource_type, "k_id": resource_id}
    conn = session.connection()
    conn.execute(_DELETE_TOKENS, key)
    conn.execute(_DELETE_STRINGS, key)
    conn.execute(
        _UPDATE_RESOURCE, {**key, "version_id": version, "last_updated": now, "deleted": True}
    )
    _record_version(conn, resource_type, resource_id, version, now, "DELETE", None)
    return current


def history(session: Session, resource_type: str, resource_id: str) -> Sequence[ResourceVersion]:
    return session.scalars(
        select(ResourceVersion)
        .where(ResourceVersion.type == resource_type, ResourceVersion.id == resource_id)
        .order_by(ResourceVersion.version_id.desc())
    ).all()


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
