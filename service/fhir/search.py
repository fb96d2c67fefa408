"""Turn FHIR search query parameters into a typed query, or a 400 naming what is wrong."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from service.errors import FHIRError, Issue, bad_request
from service.fhir.index import normalize_string, parse_date_range
from service.fhir.registry import (
    CONTROL_PARAMS,
    SORTABLE_KINDS,
    Include,
    SearchParam,
    includes_from,
    params_for,
    revincludes_into,
)

_PREFIXES = ("eq", "ne", "ge", "le", "gt", "lt", "sa", "eb")
_SUPPORTED_PREFIXES = {"eq", "ge", "le", "gt", "lt"}


@dataclass(frozen=True, slots=True)
class SearchLimits:
    """Caps that keep one request from costing the server more than a page of work: every
    value is another SQL alternative, every parameter another join, every skipped row a row
    read. Beyond them the search is refused (400), never silently cut."""

    max_params: int = 50  # query parameters in one search, result controls included
    max_values: int = 100  # comma-separated alternatives in one parameter
    max_total_values: int = 500  # alternatives in all parameters together
    max_offset: int = 100_000  # `_offset`; page by narrowing criteria beyond it
    max_value_length: int = 32_768  # characters in one parameter value (POST _search bodies)


DEFAULT_LIMITS = SearchLimits()


@dataclass(frozen=True, slots=True)
class DateFilter:
    prefix: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class TokenValue:
    system: str | None  # None = any system
    code: str | None  # None = any code in that system ("system|")


StringMode = Literal["starts", "contains", "exact"]


@dataclass(frozen=True, slots=True)
class StringValue:
    value: str  # normalised for starts/contains, as sent for exact
    mode: StringMode


@dataclass(frozen=True, slots=True)
class Criterion:
    param: SearchParam
    # OR-ed alternatives (comma-separated values); criteria are AND-ed together.
    ids: tuple[str, ...] = ()
    tokens: tuple[TokenValue, ...] = ()
    dates: tuple[DateFilter, ...] = ()
    strings: tuple[StringValue, ...] = ()


@dataclass(frozen=True, slots=True)
class SortKey:
    param: SearchParam
    descending: bool


@dataclass(frozen=True, slots=True)
class IncludeRef:
    """One `_include`/`_revinclude`, optionally narrowed to one target type."""

    include: Include
    target: str | None = None

    def target_types(self) -> tuple[str, ...]:
        if self.target is None:
            return self.include.targets
        return (self.target,)


Summary = Literal["true", "false", "text", "data", "count"]


@dataclass(frozen=True, slots=True)
class SearchQuery:
    resource_type: str
    criteria: tuple[Criterion, ...] = ()
    count: int = 50
    offset: int = 0
    total: bool = True
    summary: Summary = "false"
    sort: tuple[SortKey, ...] = ()
    includes: tuple[IncludeRef, ...] = ()
    revincludes: tuple[IncludeRef, ...] = ()
    elements: tuple[str, ...] | None = None
    # Every parameter as given except _count/_offset, for self/next/previous links.
    echo: tuple[tuple[str, str], ...] = field(default=())

    @property
    def summary_count(self) -> bool:
        return self.summary == "count"


def _split(value: str) -> list[str]:
    # Commas separate alternatives; "\," is a literal comma.
    parts, cur, esc = [], "", False
    for ch in value:
        if esc:
            cur += ch
            esc = False
        elif ch == "\\":
            esc = True
        elif ch == ",":
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def _token(raw: str) -> TokenValue:
    if "|" not in raw:
        return TokenValue(None, raw)
    system, code = raw.split("|", 1)
    return TokenValue(system, code or None)


def _date(raw: str, name: str) -> DateFilter:
    prefix = raw[:2] if raw[:2] in _PREFIXES else "eq"
    value = raw[2:] if raw[:2] in _PREFIXES else raw
    if prefix not in _SUPPORTED_PREFIXES:
        raise bad_request(f"Search prefix '{prefix}' is not supported for '{name}'", (name,))
    rng = parse_date_range(value.replace(" ", "+"))
    if rng is None:
        raise bad_request(f"'{name}' is not a FHIR date/dateTime", (name,))
    return DateFilter(prefix, rng.start, rng.end)


def _string(raw: str, name: str, modifier: str | None) -> StringValue:
    if modifier == "exact":
        return StringValue(raw, "exact")
    norm = normalize_string(raw)
    if not norm:
        raise bad_request(f"'{name}' needs a non-blank value", (name,))
    return StringValue(norm, "contains" if modifier == "contains" else "starts")


def _int(name: str, value: str, lo: int, hi: int | None = None, *, cap: int | None = None) -> int:
    """A non-negative integer control value in plain digits (not " 1", "1_0", "+1", which
    int() would take); below `lo` or above `cap` is a 400, above `hi` is lowered to it. Any
    number of digits is read without overflow: beyond 18 it is simply "more than any limit"."""
    if value.startswith("-") and value[1:].isascii() and value[1:].isdigit():
        raise bad_request(f"'{name}' must be at least {lo}", (name,))
    if not value.isascii() or not value.isdigit():
        raise bad_request(f"'{name}' must be a non-negative integer", (name,))
    n = int(value) if len(value) <= 18 else 10**18
    if n < lo:
        raise bad_request(f"'{name}' must be at least {lo}", (name,))
    if cap is not None and n > cap:
        raise bad_request(f"'{name}' may be at most {cap}", (name,))
    return min(n, hi) if hi is not None else n


_ELEMENT_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,63}$")
_SUMMARIES: tuple[Summary, ...] = ("true", "false", "text", "data", "count")


def _include_ref(name: str, value: str, resource_type: str, *, reverse: bool) -> IncludeRef:
    known = revincludes_into(resource_type) if reverse else includes_from(resource_type)
    parts = value.split(":")
    if len(parts) not in (2, 3):
        raise bad_request(f"'{name}' must be Type:parameter or Type:parameter:Target", (name,))
    found = known.get(f"{parts[0]}:{parts[1]}")
    target = parts[2] if len(parts) == 3 else None
    if found is None or (target is not None and target not in found.targets):
        supported = ", ".join(sorted(known)) or "none"
        raise FHIRError.of(
            400,
            "not-supported",
            f"'{name}' value is not supported on {resource_type}; supported: {supported}",
            (name,),
        )
    if reverse and target is not None and target != resource_type:
        raise bad_request(f"'{name}' target must be {resource_type}", (name,))
    return IncludeRef(found, target)


def _sort_keys(value: str, declared: dict[str, SearchParam]) -> list[SortKey]:
    keys: list[SortKey] = []
    names = value.split(",")
    if len(names) > 3:
        raise bad_request("'_sort' takes at most 3 keys", ("_sort",))
    for raw in names:
        desc = raw.startswith("-")
        param = declared.get(raw.removeprefix("-"))
        if param is None or param.kind not in SORTABLE_KINDS:
            sortable = sorted(p.name for p in declared.values() if p.kind in SORTABLE_KINDS)
            raise bad_request(
                f"'_sort' accepts {', '.join(sortable)} (prefix '-' for descending)", ("_sort",)
            )
        keys.append(SortKey(param, desc))
    return keys


def parse_search(
    resource_type: str,
    items: Sequence[tuple[str, str]],
    *,
    default_count: int = 50,
    max_count: int = 1000,
    limits: SearchLimits = DEFAULT_LIMITS,
) -> SearchQuery:
    """The typed query for `items` (query parameters in order), or a 400 naming the problem.

    Unknown parameters and modifiers are refused, never ignored: an ignored filter on clinical
    data returns the wrong patients.
    """
    declared = params_for(resource_type)
    if len(items) > limits.max_params:
        raise FHIRError.of(
            400,
            "too-costly",
            f"A search takes at most {limits.max_params} parameters (got {len(items)})",
        )
    criteria: list[Criterion] = []
    echo: list[tuple[str, str]] = []
    count, offset, total = default_count, 0, True
    summary: Summary = "false"
    sort: list[SortKey] = []
    includes: list[IncludeRef] = []
    revincludes: list[IncludeRef] = []
    elements: list[str] | None = None
    unknown: list[str] = []
    for name, value in items:
        base = name.split(":", 1)[0]
        modifier = name.split(":", 1)[1] if ":" in name else None
        if len(value) > limits.max_value_length:
            raise FHIRError.of(
                400,
                "too-costly",
                f"'{base}' value is longer than {limits.max_value_length} characters",
                (base,),
            )
        if "\x00" in name or "\x00" in value:  # issue 10: PostgreSQL cannot take NUL
            raise bad_request("A search parameter or value contains a NUL character", (base,))
        if base not in ("_count", "_offset"):
            echo.append((name, value))
        if base in CONTROL_PARAMS:
            if modifier is not None:
                raise bad_request(f"Modifier ':{modifier}' is not supported on '{base}'", (name,))
            if base == "_count":
                count = _int("_count", value, 0, max_count)
            elif base == "_offset":
                offset = _int("_offset", value, 0, cap=limits.max_offset)
            elif base == "_total":
                if value not in ("none", "estimate", "accurate"):
                    raise bad_request("'_total' must be none, estimate or accurate", ("_total",))
                total = value != "none"
            elif base == "_summary":
                if value not in _SUMMARIES:
                    raise bad_request(
                        "'_summary' must be one of " + ", ".join(_SUMMARIES), ("_summary",)
                    )
                summary = value
            elif base == "_sort":
                sort = _sort_keys(value, declared)
            elif base in ("_include", "_revinclude"):
                ref = _include_ref(base, value, resource_type, reverse=base == "_revinclude")
                (revincludes if base == "_revinclude" else includes).append(ref)
            elif base == "_elements":
                names = [n.strip() for n in value.split(",") if n.strip()]
                if len(names) > limits.max_values:
                    raise FHIRError.of(
                        400,
                        "too-costly",
                        f"'_elements' takes at most {limits.max_values} names",
                        ("_elements",),
                    )
                if not names or not all(_ELEMENT_RE.match(n) for n in names):
                    raise bad_request(
                        "'_elements' takes a comma-separated list of element names",
                        ("_elements",),
                    )
                elements = [*(elements or []), *names]
            continue
        param = declared.get(base)
        if param is None:
            unknown.append(base)
            continue
        allowed_modifiers = ("exact", "contains") if param.kind == "string" else ()
        if modifier is not None and modifier not in allowed_modifiers:
            raise bad_request(f"Modifier ':{modifier}' is not supported on '{base}'", (name,))
        if value == "":
            continue
        values = _split(value)
        if len(values) > limits.max_values:
            raise FHIRError.of(
                400,
                "too-costly",
                f"'{base}' takes at most {limits.max_values} comma-separated values",
                (base,),
            )
        if param.kind in ("id", "reference"):
            ids = tuple(v.rsplit("/", 1)[-1] if param.kind == "reference" else v for v in values)
            if param.kind == "reference":
                for v in values:
                    if "/" in v and v.rsplit("/", 2)[-2] != "Patient":
                        raise bad_request(f"'{base}' only accepts Patient references", (base,))
            criteria.append(Criterion(param, ids=ids))
        elif param.kind in ("token", "token-column"):
            criteria.append(Criterion(param, tokens=tuple(_token(v) for v in values)))
        elif param.kind == "string":
            criteria.append(
                Criterion(param, strings=tuple(_string(v, base, modifier) for v in values))
            )
        else:
            criteria.append(Criterion(param, dates=tuple(_date(v, base) for v in values)))
    alternatives = sum(len(c.ids) + len(c.tokens) + len(c.dates) + len(c.strings) for c in criteria)
    if alternatives > limits.max_total_values:
        raise FHIRError.of(
            400,
            "too-costly",
            f"A search takes at most {limits.max_total_values} values in all its parameters "
            f"(got {alternatives})",
        )
    if unknown:
        supported = ", ".join(sorted(declared))
        raise FHIRError(
            400,
            [
                Issue(
                    "error",
                    "not-supported",
                    f"Unknown search parameter '{u}' for {resource_type}; supported: {supported}",
                    (u,),
                )
                for u in unknown
            ],
        )
    if elements is not None and summary != "false":
        raise bad_request("'_elements' and '_summary' cannot be combined", ("_elements",))
    return SearchQuery(
        resource_type,
        tuple(criteria),
        count,
        offset,
        total,
        summary,
        tuple(sort),
        tuple(includes),
        tuple(revincludes),
        tuple(elements) if elements is not None else None,
        tuple(echo),
    )
