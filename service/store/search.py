"""Run a parsed SearchQuery against the index columns, token and string tables; fetch the
resources `_include` and `_revinclude` add to a page."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select, true
from sqlalchemy.orm import Session

from service.fhir.search import Criterion, DateFilter, SearchQuery, SortKey
from service.store.models import Resource, ResourceString, ResourceToken


def _date_clause(start_col: Any, end_col: Any, f: DateFilter) -> ColumnElement[bool]:
    clause: ColumnElement[bool] = _date_clause_untyped(start_col, end_col, f)
    return clause


def _date_clause_untyped(start_col: Any, end_col: Any, f: DateFilter) -> Any:
    # FHIR semantics on ranges: eq = the resource's range lies within the value's range;
    # ge/gt/le/lt compare the resource range against the value range.
    if f.prefix == "eq":
        return and_(start_col >= f.start, end_col <= f.end)
    if f.prefix == "ge":
        return end_col >= f.start
    if f.prefix == "gt":
        return end_col > f.end
    if f.prefix == "le":
        return start_col <= f.end
    return start_col < f.start  # lt


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _string_clause(c: Criterion, resource_type: str) -> ColumnElement[bool]:
    alts: list[ColumnElement[bool]] = []
    for s in c.strings:
        if s.mode == "exact":
            alts.append(ResourceString.exact == s.value)
        else:
            pattern = _like_escape(s.value) + "%"
            if s.mode == "contains":
                pattern = "%" + pattern
            alts.append(ResourceString.norm.like(pattern, escape="\\"))
    return Resource.id.in_(
        select(ResourceString.id).where(
            ResourceString.type == resource_type,
            ResourceString.param == c.param.name,
            or_(*alts),
        )
    )


def _criterion(c: Criterion, resource_type: str) -> ColumnElement[bool]:
    kind = c.param.kind
    if kind == "id":
        return Resource.id.in_(c.ids)
    if kind == "reference":
        return Resource.patient_id.in_(c.ids)
    if kind == "token-column":
        return Resource.status.in_([t.code for t in c.tokens if t.code is not None])
    if kind == "string":
        return _string_clause(c, resource_type)
    if kind == "token":
        # One uncorrelated IN (subquery) per parameter lets the database start from the token
        # index; a correlated EXISTS made SQLite probe every resource of the type (tens of
        # seconds). The alternatives are OR-ed inside it, not as one subquery each.
        alts = []
        for t in c.tokens:
            conds = []
            if t.code is not None:
                conds.append(ResourceToken.code == t.code)
            if t.system is not None:
                conds.append(ResourceToken.system == t.system)
            alts.append(and_(*conds) if conds else true())
        return Resource.id.in_(
            select(ResourceToken.id).where(
                ResourceToken.type == resource_type,
                ResourceToken.param == c.param.name,
                or_(*alts),
            )
        )
    if kind == "last-updated":
        return or_(
            *[_date_clause(Resource.last_updated, Resource.last_updated, d) for d in c.dates]
        )
    return or_(*[_date_clause(Resource.date_start, Resource.date_end, d) for d in c.dates])


def _base(query: SearchQuery) -> Select[Any]:
    stmt = select(Resource).where(Resource.type == query.resource_type, Resource.deleted.is_(False))
    for c in query.criteria:
        stmt = stmt.where(_criterion(c, query.resource_type))
    return stmt


def _order(key: SortKey) -> list[Any]:
    """ORDER BY terms for one `_sort` key. A date sorts by the start of its range ascending
    and by the end descending (FHIR); resources without one come last either way, on SQLite
    and PostgreSQL alike (their default NULL placement differs)."""
    kind = key.param.kind
    if kind == "id":
        return [Resource.id.desc() if key.descending else Resource.id]
    if kind == "last-updated":
        return [Resource.last_updated.desc() if key.descending else Resource.last_updated]
    col = Resource.date_end if key.descending else Resource.date_start
    nulls_last = case((col.is_(None), 1), else_=0)
    return [nulls_last, col.desc() if key.descending else col]


def search(session: Session, query: SearchQuery) -> tuple[list[bytes], int | None]:
    """Returns (page of resource bodies, total or None when not asked for)."""
    base = _base(query)
    total = None
    if query.total or query.summary_count:
        total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    if query.summary_count or query.count == 0:
        return [], total
    order: list[Any] = [term for key in query.sort for term in _order(key)]
    order.append(Resource.id)  # a stable order, so pages neither repeat nor skip
    rows = session.scalars(
        base.with_only_columns(Resource.content)
        .order_by(*order)
        .offset(query.offset)
        .limit(query.count)
    ).all()
    return list(rows), total


@dataclass(frozen=True, slots=True)
class Included:
    resources: list[dict[str, Any]]
    truncated: bool  # more would have been included than `limit`


def _reference_targets(value: Any) -> Iterable[tuple[str, str]]:
    """(type, id) of each relative or absolute literal reference in an element's value."""
    for ref in value if isinstance(value, list) else [value]:
        if not isinstance(ref, Mapping) or not isinstance(ref.get("reference"), str):
            continue
        parts = ref["reference"].split("/")
        if "_history" in parts:
            parts = parts[: parts.index("_history")]
        if len(parts) >= 2 and parts[-2] and parts[-1]:
            yield parts[-2], parts[-1]


def included(
    session: Session,
    query: SearchQuery,
    matches: list[dict[str, Any]],
    *,
    readable: frozenset[str],
    limit: int,
) -> Included:
    """The resources `_include`/`_revinclude` add to a page of `matches`, each once, none
    that is already a match, and only of types in `readable` (the caller's read scopes: a
    token that may not read Patients gets no Patients through an include either)."""
    wanted: dict[str, set[str]] = {}
    for ref in query.includes:
        targets = set(ref.target_types()) & readable
        for res in matches:
            for path in ref.include.paths:
                for rtype, rid in _reference_targets(res.get(path)):
                    if rtype in targets:
                        wanted.setdefault(rtype, set()).add(rid)
    seen = {(query.resource_type, str(r.get("id"))) for r in matches}
    out: list[dict[str, Any]] = []
    truncated = False
    for rtype in sorted(wanted):
        ids = sorted(i for i in wanted[rtype] if (rtype, i) not in seen)
        for chunk in _chunks(ids, 500):
            rows = session.scalars(
                select(Resource.content)
                .where(Resource.type == rtype, Resource.id.in_(chunk), Resource.deleted.is_(False))
                .order_by(Resource.id)
            ).all()
            truncated |= _add(out, seen, rows, limit)
    match_ids = sorted({str(r.get("id")) for r in matches})
    for ref in query.revincludes:
        source = ref.include.source
        if source not in readable or not match_ids:
            continue
        for chunk in _chunks(match_ids, 500):
            rows = session.scalars(
                select(Resource.content)
                .where(
                    Resource.type == source,
                    Resource.patient_id.in_(chunk),
                    Resource.deleted.is_(False),
                )
                .order_by(Resource.id)
                .limit(limit + 1)
            ).all()
            truncated |= _add(out, seen, rows, limit)
    return Included(out, truncated)


def _chunks(ids: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(ids), size):
        yield ids[i : i + size]


def _add(
    out: list[dict[str, Any]], seen: set[tuple[str, str]], rows: Iterable[bytes], limit: int
) -> bool:
    """Appends unseen resources up to `limit` in all; True when some were left out."""
    for raw in rows:
        res = orjson.loads(raw)
        key = (res["resourceType"], res["id"])
        if key in seen:
            continue
        if len(out) >= limit:
            return True
        seen.add(key)
        out.append(res)
    return False
