"""search-type over a session: served type (404), search scope (403),
parameters (400), the page, what `_include`/`_revinclude` add to it (only types the caller may
read), and the searchset Bundle. `parse` then `run`: the route refuses a bad search before it
opens a transaction. (GET entries of a batch could share it to answer the same way.)"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy.orm import Session

from service.auth import Principal
from service.config import Settings
from service.errors import FHIRError
from service.fhir import registry
from service.fhir.search import SearchLimits, SearchQuery, parse_search
from service.fhir.searchset import searchset
from service.store import search as store_search


def limits(settings: Settings) -> SearchLimits:
    return SearchLimits(
        max_params=settings.search_max_params,
        max_values=settings.search_max_values,
        max_total_values=settings.search_max_total_values,
        max_offset=settings.search_max_offset,
    )


def parse(
    principal: Principal, resource_type: str, items: Sequence[tuple[str, str]], settings: Settings
) -> SearchQuery:
    """The checked query; raises before any SQL runs."""
    if not registry.is_served(resource_type):
        raise FHIRError.of(
            404, "not-supported", f"Resource type '{resource_type}' is not served here"
        )
    principal.require(resource_type, "search")
    return parse_search(
        resource_type,
        items,
        default_count=settings.default_page_size,
        max_count=settings.max_page_size,
        limits=limits(settings),
    )


def run(
    session: Session, principal: Principal, q: SearchQuery, *, base: str, settings: Settings
) -> dict[str, Any]:
    """The searchset Bundle of a parsed query (`base`: this server's …/fhir)."""
    rows, total = store_search.search(session, q)
    matches = [orjson.loads(r) for r in rows]
    extra = store_search.Included([], truncated=False)
    if matches and (q.includes or q.revincludes):
        readable = frozenset(t for t in registry.SEARCH_PARAMS if principal.allows(t, "read"))
        extra = store_search.included(
            session, q, matches, readable=readable, limit=settings.search_max_included
        )
    return searchset(base, q, matches, extra.resources, total, truncated=extra.truncated)
