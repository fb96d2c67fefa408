"""Turn FHIR search query parameters into a typed query, or a 400 naming what is wrong."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from service.errors import FHIRError, Issue, bad_request
from service.fhir.index import parse_date_range
from service.fhir.registry import CONTROL_PARAMS, SearchParam, params_for

_PREFIXES = ("eq", "ne", "ge", "le", "gt", "lt", "sa", "eb")
_SUPPORTED_PREFIXES = {"eq", "ge", "le", "gt", "lt"}


@dataclass(frozen=True, slots=True)
class DateFilter:
    prefix: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class TokenValue:
    system: str | None  # None = any system
    code: str | None  # None = any code in that system ("system|")


@dataclass(frozen=True, slots=True)
class Criterion:
    param: SearchParam
    # OR-ed alternatives (comma-separated values); criteria are AND-ed together.
    ids: tuple[str, ...] = ()
    tokens: tuple[TokenValue, ...] = ()
    dates: tuple[DateFilter, ...] = ()


@dataclass(frozen=True, slots=True)
class SearchQuery:
    resource_type: str
    criteria: tuple[Criterion, ...] = ()
    count: int = 50
    offset: int = 0
    total: bool = True
    summary_count: bool = False
    sort_desc_updated: bool = False
    # Canonical query string of the criteria, for self/next links.
    echo: tuple[tuple[str, str], ...] = field(default=())


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


def _int(name: str, value: str, lo: int, hi: int | None = None) -> int:
    try:
        n = int(value)
    except ValueError:
        raise bad_request(f"'{name}' must be an integer", (name,)) from None
    if n < lo:
        raise bad_request(f"'{name}' must be at least {lo}", (name,))
    return min(n, hi) if hi is not None else n


def parse_search(
    resource_type: str,
    items: Sequence[tuple[str, str]],
    *,
    default_count: int = 50,
    max_count: int = 1000,
) -> SearchQuery:
    declared = params_for(resource_type)
    criteria: list[Criterion] = []
    echo: list[tuple[str, str]] = []
    count, offset, total, summary_count, sort_desc = default_count, 0, True, False, False
    unknown: list[str] = []
    for name, value in items:
        base = name.split(":", 1)[0]
        modifier = name.split(":", 1)[1] if ":" in name else None
        if base in CONTROL_PARAMS:
            if base == "_count":
                count = _int("_count", value, 0, max_count)
            elif base == "_offset":
                offset = _int("_offset", value, 0)
            elif base == "_total":
                if value not in ("none", "estimate", "accurate"):
                    raise bad_request("'_total' must be none, estimate or accurate", ("_total",))
                total = value != "none"
            elif base == "_summary":
                if value == "count":
                    summary_count = True
                elif value != "false":
                    raise bad_request("Only _summary=count is supported", ("_summary",))
            elif base == "_sort":
                if value not in ("_lastUpdated", "-_lastUpdated"):
                    raise bad_request("Only _sort=_lastUpdated or -_lastUpdated", ("_sort",))
                sort_desc = value.startswith("-")
                echo.append((name, value))
            continue
        param = declared.get(base)
        if param is None:
            unknown.append(base)
            continue
        if modifier is not None:
            raise bad_request(f"Modifier ':{modifier}' is not supported on '{base}'", (name,))
        if value == "":
            continue
        values = _split(value)
        if param.kind in ("id", "reference"):
            ids = tuple(v.rsplit("/", 1)[-1] if param.kind == "reference" else v for v in values)
            if param.kind == "reference":
                for v in values:
                    if "/" in v and v.rsplit("/", 2)[-2] != "Patient":
                        raise bad_request(f"'{base}' only accepts Patient references", (base,))
            criteria.append(Criterion(param, ids=ids))
        elif param.kind in ("token", "token-column"):
            criteria.append(Criterion(param, tokens=tuple(_token(v) for v in values)))
        else:
            criteria.append(Criterion(param, dates=tuple(_date(v, base) for v in values)))
        echo.append((name, value))
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
    return SearchQuery(
        resource_type,
        tuple(criteria),
        count,
        offset,
        total,
        summary_count,
        sort_desc,
        tuple(echo),
    )
