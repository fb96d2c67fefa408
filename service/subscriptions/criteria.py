"""Subscription.criteria: a FHIR search on Flag or CommunicationRequest, judged per version.

`CommunicationRequest?status=active&priority=stat,asap` or `Flag?status=active`: the same
parameters (and meaning) as the type's search, minus what cannot be judged on one resource
version at write time (dates, `_lastUpdated`, result controls, modifiers). A version matches
when every parameter matches (AND) and, within one, any comma-separated value does (OR); the
values compared are the store's index values for that version, exactly what search uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qsl

from service.errors import FHIRError
from service.fhir.index import IndexEntry
from service.fhir.search import Criterion, TokenValue, parse_search

# The alert resources; subscribing to clinical input data is not offered.
SUBSCRIBABLE_TYPES = frozenset({"Flag", "CommunicationRequest"})
_MATCHABLE_KINDS = frozenset({"id", "reference", "token", "token-column"})


class CriteriaError(ValueError):
    """Why a criteria string cannot be used (names parameters, never values)."""


@dataclass(frozen=True, slots=True)
class Criteria:
    resource_type: str
    criteria: tuple[Criterion, ...]

    def matches(self, resource_type: str, resource_id: str, index: IndexEntry) -> bool:
        if resource_type != self.resource_type:
            return False
        return all(_matches(c, resource_id, index) for c in self.criteria)


def _token_matches(wanted: TokenValue, system: str, code: str) -> bool:
    if wanted.system is not None and wanted.system != system:
        return False
    return wanted.code is None or wanted.code == code


def _matches(c: Criterion, resource_id: str, index: IndexEntry) -> bool:
    kind = c.param.kind
    if kind == "id":
        return resource_id in c.ids
    if kind == "reference":
        return index.patient_id is not None and index.patient_id in c.ids
    if kind == "token-column":  # the status column: codes only, as in search
        return index.status is not None and index.status in {t.code for t in c.tokens}
    # token: any indexed (system, code) of this parameter matches any alternative
    return any(
        _token_matches(t, system, code)
        for param, system, code in index.tokens
        if param == c.param.name
        for t in c.tokens
    )


@lru_cache(maxsize=1024)
def parse_criteria(text: str) -> Criteria:
    """Parse `Type?name=value&...` (or a bare `Type`: every version of that type)."""
    if not isinstance(text, str) or not text.strip():
        raise CriteriaError("Subscription.criteria is empty")
    rtype, _, query = text.strip().partition("?")
    if rtype not in SUBSCRIBABLE_TYPES:
        raise CriteriaError(
            "Subscription.criteria must start with "
            + " or ".join(f"'{t}?'" for t in sorted(SUBSCRIBABLE_TYPES))
        )
    try:
        items = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise CriteriaError("Subscription.criteria is not a valid query string") from None
    for name, value in items:
        base = name.split(":", 1)[0]
        if base.startswith("_") and base != "_id":
            raise CriteriaError(f"Subscription.criteria: '{base}' is not supported in criteria")
        if value == "":
            raise CriteriaError(f"Subscription.criteria: '{base}' has no value")
    try:
        query_ = parse_search(rtype, items)
    except FHIRError as exc:
        reason = "; ".join(i.diagnostics for i in exc.issues)
        raise CriteriaError(f"Subscription.criteria: {reason}") from None
    for c in query_.criteria:
        if c.param.kind not in _MATCHABLE_KINDS:
            raise CriteriaError(
                f"Subscription.criteria: '{c.param.name}' ({c.param.fhir_type}) cannot be "
                "used in criteria; use status, priority, code, category, identifier, patient "
                "or _id"
            )
    return Criteria(rtype, query_.criteria)
