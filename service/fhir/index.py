"""Pull the searchable facts out of a resource once, at write time.

Search and the rule loader query these columns instead of re-parsing stored JSON. Dates are
kept as UTC ranges so a partial FHIR date ("2024-05") searches as the whole month.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

_DATE_RE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?P<f>\.\d+)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


@dataclass(frozen=True, slots=True)
class DateRange:
    start: datetime  # naive UTC, inclusive
    end: datetime  # naive UTC, inclusive


def parse_date_range(value: str) -> DateRange | None:
    """A FHIR date/dateTime/instant as the UTC range it covers; None when unreadable."""
    m = _DATE_RE.match(value.strip()) if isinstance(value, str) else None
    if not m:
        return None
    y = int(m["y"])
    if y == 0:
        return None
    try:
        if m["m"] is None:
            start = datetime(y, 1, 1)
            return DateRange(start, datetime(y, 12, 31, 23, 59, 59, 999999))
        mo = int(m["m"])
        if m["d"] is None:
            start = datetime(y, mo, 1)
            last = calendar.monthrange(y, mo)[1]
            return DateRange(start, datetime(y, mo, last, 23, 59, 59, 999999))
        d = int(m["d"])
        if m["H"] is None:
            return DateRange(datetime(y, mo, d), datetime(y, mo, d, 23, 59, 59, 999999))
        sec = int(m["S"] or 0)
        micro = int(float(m["f"]) * 1_000_000) if m["f"] else 0
        moment = datetime(y, mo, d, int(m["H"]), int(m["M"]), sec, micro)
        tz = m["tz"]
        if tz and tz != "Z":
            sign = 1 if tz[0] == "+" else -1
            moment = _shift(moment, -sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6])))
        if m["S"] is None:  # minute precision covers the minute
            return DateRange(moment, _shift(moment, timedelta(seconds=59, microseconds=999999)))
        return DateRange(moment, moment)
    except ValueError:
        return None


def _shift(moment: datetime, delta: timedelta) -> datetime:
    """`moment + delta`, held at the ends of the representable range: 0001-01-01T00:00+14:00
    is a valid FHIR instant whose UTC value lies before year 1 (an OverflowError, not a 400)."""
    try:
        return moment + delta
    except OverflowError:
        return datetime.min if delta < timedelta(0) else datetime.max


def parse_instant(value: str) -> datetime | None:
    """An evaluation time (`asOf`): a dateTime *with* a time of day, as naive UTC; None when
    it is not one. A "+" in an offset arrives as a space when a URL was not encoded."""
    if "T" not in value:
        return None
    rng = parse_date_range(value.replace(" ", "+"))
    return rng.start if rng is not None else None


def to_naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


@dataclass(slots=True)
class IndexEntry:
    patient_id: str | None = None
    status: str | None = None
    date: DateRange | None = None
    tokens: list[tuple[str, str, str]] = field(default_factory=list)  # (param, system, code)
    strings: list[tuple[str, str]] = field(default_factory=list)  # (param, value as sent)


# Letters Unicode does not decompose into a base letter and a mark, but readers take for an
# accented form of one ("Ødegård" is searched as "odegard", "Łukasz" as "lukasz").
_FOLD = str.maketrans({"ø": "o", "đ": "d", "ł": "l", "ħ": "h", "ı": "i", "æ": "ae", "œ": "oe"})


def normalize_string(value: str) -> str:
    """FHIR string search compares without case and accents ("Élodie" ~ "elodie"), and with
    runs of whitespace as one space."""
    decomposed = unicodedata.normalize("NFKD", value.casefold())
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(bare.translate(_FOLD).split())


GENDER_SYSTEM = "http://hl7.org/fhir/administrative-gender"


def _patient_strings(resource: Mapping[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for name in resource.get("name", []) or []:
        if not isinstance(name, Mapping):
            continue
        family = name.get("family")
        given = [g for g in name.get("given", []) or [] if isinstance(g, str)]
        if isinstance(family, str):
            out += [("family", family), ("name", family)]
        out += [("given", g) for g in given] + [("name", g) for g in given]
        for part in ("text",):
            if isinstance(name.get(part), str):
                out.append(("name", name[part]))
        for part in ("prefix", "suffix"):
            out += [("name", v) for v in name.get(part, []) or [] if isinstance(v, str)]
    return out


def reference_id(reference: Any, resource_type: str) -> str | None:
    """The id in "Type/id" (relative or absolute URL, optional /_history/n)."""
    if not isinstance(reference, Mapping):
        return None
    ref = reference.get("reference")
    if not isinstance(ref, str):
        return None
    parts = ref.split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) >= 2 and parts[-2] == resource_type and parts[-1]:
        return parts[-1]
    return None


def _codings(concept: Any) -> Iterator[tuple[str, str]]:
    if isinstance(concept, Mapping):
        for c in concept.get("coding", []) or []:
            if isinstance(c, Mapping) and isinstance(c.get("code"), str):
                yield (c.get("system") or "", c["code"])


def _first_date(resource: Mapping[str, Any], *names: str) -> DateRange | None:
    for name in names:
        value = resource.get(name)
        if isinstance(value, str):
            return parse_date_range(value)
        if isinstance(value, Mapping) and name.lower().endswith("period"):
            start = parse_date_range(value.get("start", "")) if value.get("start") else None
            end = parse_date_range(value.get("end", "")) if value.get("end") else None
            if start or end:
                return DateRange(
                    start.start if start else datetime.min,
                    end.end if end else datetime.max,
                )
    return None


def _status_code(concept: Any) -> str | None:
    for _system, code in _codings(concept):
        return code
    return None


def extract(resource_type: str, resource_id: str, resource: Mapping[str, Any]) -> IndexEntry:
    entry = IndexEntry()
    tokens = entry.tokens
    if resource_type == "Patient":
        entry.patient_id = resource_id
        entry.strings = _patient_strings(resource)
        entry.date = _first_date(resource, "birthDate")
        if isinstance(resource.get("gender"), str):
            tokens.append(("gender", GENDER_SYSTEM, resource["gender"]))
    else:
        entry.patient_id = reference_id(resource.get("subject"), "Patient") or reference_id(
            resource.get("patient"), "Patient"
        )
    for ident in resource.get("identifier", []) or []:
        if isinstance(ident, Mapping) and isinstance(ident.get("value"), str):
            tokens.append(("identifier", ident.get("system") or "", ident["value"]))
    categories = resource.get("category")
    if isinstance(categories, Mapping):
        categories = [categories]
    for cat in categories or []:
        tokens.extend(("category", s, c) for s, c in _codings(cat))
    tokens.extend(("code", s, c) for s, c in _codings(resource.get("code")))

    if resource_type == "Observation":
        entry.status = resource.get("status")
        entry.date = _first_date(
            resource, "effectiveDateTime", "effectivePeriod", "effectiveInstant", "issued"
        )
    elif resource_type == "Condition":
        entry.status = _status_code(resource.get("clinicalStatus"))
        entry.date = _first_date(resource, "onsetDateTime", "onsetPeriod", "recordedDate")
        tokens.extend(
            ("clinical-status", s, c) for s, c in _codings(resource.get("clinicalStatus"))
        )
        tokens.extend(
            ("verification-status", s, c) for s, c in _codings(resource.get("verificationStatus"))
        )
    elif resource_type == "Flag":
        entry.status = resource.get("status")
        entry.date = _first_date(resource, "period")
    elif resource_type == "CommunicationRequest":
        entry.status = resource.get("status")
        entry.date = _first_date(resource, "authoredOn")
        if isinstance(resource.get("priority"), str):
            tokens.append(("priority", "", resource["priority"]))
    elif resource_type == "AuditEvent":  # issue 13: searchable by entity, patient, agent
        _audit_index(resource, entry)
    else:
        status = resource.get("status")
        entry.status = status if isinstance(status, str) else None
    return entry


def _audit_index(resource: Mapping[str, Any], entry: IndexEntry) -> None:
    entry.date = _first_date(resource, "recorded")
    for item in resource.get("entity") or ():
        what = item.get("what") if isinstance(item, Mapping) else None
        ref = what.get("reference") if isinstance(what, Mapping) else None
        if not isinstance(ref, str):
            continue
        entry.tokens.append(("entity", "", ref))
        bare = ref.split("/_history/")[0]
        if bare != ref:
            entry.tokens.append(("entity", "", bare))
        if bare.startswith("Patient/"):
            entry.patient_id = bare.removeprefix("Patient/")
    for agent in resource.get("agent") or ():
        who = agent.get("who") if isinstance(agent, Mapping) else None
        if not isinstance(who, Mapping):
            continue
        ident = who.get("identifier")
        if isinstance(ident, Mapping) and isinstance(ident.get("value"), str):
            entry.tokens.append(("agent", "", ident["value"]))
        if isinstance(who.get("reference"), str):
            entry.tokens.append(("agent", "", who["reference"]))
    for sub in resource.get("subtype") or ():
        if isinstance(sub, Mapping) and isinstance(sub.get("code"), str):
            entry.tokens.append(("action", sub.get("system") or "", sub["code"]))
