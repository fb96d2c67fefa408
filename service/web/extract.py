"""Pure helpers that turn FHIR JSON into the words and dates a nurse reads. No I/O.

Stored resources come from many EHRs, so every field is treated as possibly missing or oddly
shaped: a helper returns None (or an empty string) rather than raising on surprising JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from contract import PRIORITY_ORDER

JSON = Mapping[str, Any]
PRIORITY_WORD = {"stat": "STAT", "asap": "ASAP", "urgent": "Urgent", "routine": "Routine"}


def priority_rank(priority: str) -> int:
    """Page order: the most pressing priority first (stat = 0), anything unknown last."""
    if priority not in PRIORITY_ORDER:
        return len(PRIORITY_ORDER)
    return len(PRIORITY_ORDER) - 1 - PRIORITY_ORDER.index(priority)


def parse_when(value: object) -> datetime | None:
    """A FHIR date or dateTime as an aware UTC datetime (a date alone is its midnight UTC)."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    if len(text) == 4:
        text += "-01-01"
    elif len(text) == 7:
        text += "-01"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def show_when(value: object) -> str:
    """How a date reads on the page: "2024-05-01" or "2024-05-01 14:03 UTC"."""
    if not isinstance(value, str):
        return ""
    parsed = parse_when(value)
    if parsed is None:
        return value
    if "T" not in value:
        return value[:10]
    return parsed.strftime("%Y-%m-%d %H:%M UTC")


def show_age(moment: datetime | None, now: datetime) -> str:
    """ "45 min ago", "3 h ago", "2 days ago": how long an alert has been waiting."""
    if moment is None:
        return ""
    minutes = max(0, int((now - moment).total_seconds() // 60))
    if minutes < 1:
        return "just now"
    if minutes < 60:
        return f"{minutes} min ago"
    if minutes < 48 * 60:
        return f"{minutes // 60} h ago"
    return f"{minutes // (24 * 60)} days ago"


_SYSTEM_NAMES = {
    "http://loinc.org": "LOINC",
    "http://snomed.info/sct": "SNOMED CT",
    "http://hl7.org/fhir/sid/icd-10-cm": "ICD-10-CM",
    "http://hl7.org/fhir/sid/icd-10": "ICD-10",
}


def concept_words(concept: object) -> str:
    """A CodeableConcept's own words (text, else the first display); "" when it has none."""
    if not isinstance(concept, Mapping):
        return ""
    if isinstance(concept.get("text"), str) and concept["text"]:
        return str(concept["text"])
    for coding in concept.get("coding") or ():
        display = coding.get("display") if isinstance(coding, Mapping) else None
        if isinstance(display, str) and display:
            return display
    return ""


def concept_code(concept: object) -> str:
    """The first coding as "LOINC 2000-8" (a named system) or the bare code."""
    if isinstance(concept, Mapping):
        for coding in concept.get("coding") or ():
            if isinstance(coding, Mapping) and coding.get("code"):
                system = _SYSTEM_NAMES.get(str(coding.get("system") or ""), "")
                return f"{system} {coding['code']}".strip()
    return ""


def concept_text(concept: object) -> str:
    """CodeableConcept in words: text, else the first display, else its code."""
    return concept_words(concept) or concept_code(concept)


def coding_display(concept: object) -> str:
    """The first coding's display (the name of a code), falling back to `concept_text`."""
    if isinstance(concept, Mapping):
        for coding in concept.get("coding") or ():
            if isinstance(coding, Mapping) and isinstance(coding.get("display"), str):
                return str(coding["display"])
    return concept_text(concept)


def codes(concept: object) -> set[tuple[str, str]]:
    if not isinstance(concept, Mapping):
        return set()
    return {
        (str(c.get("system") or ""), str(c.get("code")))
        for c in concept.get("coding") or ()
        if isinstance(c, Mapping) and c.get("code")
    }


def reference(value: object) -> str | None:
    if isinstance(value, Mapping) and isinstance(value.get("reference"), str):
        return str(value["reference"])
    return None


def extensions(resource: JSON, url: str) -> list[JSON]:
    return [
        e for e in resource.get("extension") or () if isinstance(e, Mapping) and e.get("url") == url
    ]


def patient_name(patient: JSON | None) -> str | None:
    if patient is None:
        return None
    names = [n for n in patient.get("name") or () if isinstance(n, Mapping)]
    names.sort(key=lambda n: 0 if n.get("use") == "official" else 1)
    for name in names:
        if isinstance(name.get("text"), str) and name["text"].strip():
            return str(name["text"]).strip()
        given = [str(g) for g in name.get("given") or () if isinstance(g, str)]
        family = name.get("family") if isinstance(name.get("family"), str) else ""
        full = " ".join([*given, str(family)]).strip()
        if full:
            return full
    return None


def quantity_text(quantity: object) -> str | None:
    if not isinstance(quantity, Mapping) or not isinstance(quantity.get("value"), int | float):
        return None
    unit = quantity.get("unit") or quantity.get("code") or ""
    comparator = quantity.get("comparator") or ""
    return f"{comparator}{quantity['value']:g} {unit}".strip()


def observation_value(obs: JSON) -> str | None:
    for key in (
        "valueQuantity",
        "valueCodeableConcept",
        "valueString",
        "valueInteger",
        "valueBoolean",
    ):
        if key not in obs:
            continue
        value = obs[key]
        if key == "valueQuantity":
            return quantity_text(value)
        if key == "valueCodeableConcept":
            return concept_text(value) or None
        return str(value)
    return None


def clinical_date(resource: JSON) -> str | None:
    """The date a record speaks about (effective/onset), else when it was issued/recorded."""
    for key in ("effectiveDateTime", "onsetDateTime", "effectiveInstant", "issued", "recordedDate"):
        if isinstance(resource.get(key), str):
            return str(resource[key])
    for key in ("effectivePeriod", "onsetPeriod"):
        period = resource.get(key)
        if isinstance(period, Mapping) and isinstance(period.get("start"), str):
            return str(period["start"])
    return None
