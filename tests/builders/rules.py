"""FHIR R4 JSON builders for the rule-engine tests (plain dicts, like the store's JSON): one
patient (`Patient/p1`) at a fixed time T, Observations with units and reference ranges.

Dates are written as "days before T" so every window edge reads as the spec states it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ruleset import RuleConfig, load_config
from tests.builders import ICD9, ICD10, ICD10CM, LOINC, SNOMED, UCUM, VER_STATUS
from workers.rules import evaluate
from workers.rules.model import Assessment, Finding

__all__ = ["ICD9", "ICD10", "ICD10CM", "LOINC", "SNOMED", "UCUM", "VER_STATUS"]  # re-exported

T = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
PATIENT = "Patient/p1"

Resource = dict[str, Any]


def ago(days: float, at: datetime = T) -> str:
    """An ISO datetime `days` before T (same time of day as T for whole days)."""
    return (at - timedelta(days=days)).isoformat()


def day_ago(days: int, at: datetime = T) -> str:
    """A plain FHIR date `days` calendar days before T."""
    return (at - timedelta(days=days)).date().isoformat()


def coding(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def condition(
    rid: str,
    code: str,
    system: str = ICD10CM,
    *,
    onset: str | None = None,
    verification: str | None = None,
    **extra: Any,
) -> Resource:
    resource: Resource = {
        "resourceType": "Condition",
        "id": rid,
        "subject": {"reference": PATIENT},
        "code": coding(system, code),
    }
    if onset is not None:
        resource["onsetDateTime"] = onset
    if verification is not None:
        resource["verificationStatus"] = coding(VER_STATUS, verification)
    resource.update(extra)
    return resource


def breast_cancer(rid: str = "bc", onset: str = "2019-03-01", **extra: Any) -> Resource:
    return condition(rid, "C50.912", ICD10CM, onset=onset, **extra)


def observation(
    rid: str,
    code: str,
    *,
    system: str = LOINC,
    when: str | None = None,
    value: float | None = None,
    unit: str | None = None,
    status: str = "final",
    high: float | None = None,
    high_unit: str | None = None,
    comparator: str | None = None,
    **extra: Any,
) -> Resource:
    resource: Resource = {
        "resourceType": "Observation",
        "id": rid,
        "status": status,
        "subject": {"reference": PATIENT},
        "code": coding(system, code),
    }
    if when is not None:
        resource["effectiveDateTime"] = when
    if value is not None:
        quantity: dict[str, Any] = {"value": value}
        if unit is not None:
            quantity.update(unit=unit, system=UCUM, code=unit)
        if comparator is not None:
            quantity["comparator"] = comparator
        resource["valueQuantity"] = quantity
    if high is not None:
        limit: dict[str, Any] = {"value": high}
        if high_unit is not None:
            limit.update(unit=high_unit, system=UCUM, code=high_unit)
        resource["referenceRange"] = [{"high": limit}]
    resource.update(extra)
    return resource


def calcium(rid: str, value: float, days: float = 0, unit: str = "mg/dL", **kw: Any) -> Resource:
    code = kw.pop("code", "17861-6" if unit != "mmol/L" else "2000-8")
    return observation(rid, code, when=ago(days), value=value, unit=unit, **kw)


def corrected_calcium(rid: str, value: float, days: float = 0, unit: str = "mg/dL") -> Resource:
    code = "46099-8" if unit == "mg/dL" else "29265-6"
    return observation(rid, code, when=ago(days), value=value, unit=unit)


def ionized(rid: str, value: float, days: float = 0, unit: str = "mmol/L", **kw: Any) -> Resource:
    code = kw.pop("code", "1994-3" if unit == "mmol/L" else "17863-2")
    return observation(rid, code, when=ago(days), value=value, unit=unit, **kw)


def albumin(rid: str, value: float, days: float = 0, unit: str = "g/dL") -> Resource:
    return observation(rid, "1751-7", when=ago(days), value=value, unit=unit)


def alp(rid: str, value: float, days: float = 0, unit: str = "U/L", **kw: Any) -> Resource:
    code = kw.pop("code", "6768-6")
    return observation(rid, code, when=ago(days), value=value, unit=unit, **kw)


def ggt(rid: str, value: float, days: float = 0, **kw: Any) -> Resource:
    return observation(rid, "2324-2", when=ago(days), value=value, unit="U/L", **kw)


def back_pain(rid: str, days: int, code: str = "161891005", system: str = SNOMED) -> Resource:
    return condition(rid, code, system, onset=day_ago(days))


def back_pain_obs(rid: str, days: int, **extra: Any) -> Resource:
    return observation(rid, "161891005", system=SNOMED, when=ago(days), **extra)


def neuro(rid: str, days: int, code: str = "R33.9", system: str = ICD10CM) -> Resource:
    return condition(rid, code, system, onset=day_ago(days))


def weight_loss(rid: str, days: int) -> Resource:
    return condition(rid, "R63.4", ICD10CM, onset=day_ago(days))


def pain_score(rid: str, score: float, days: float, *, back: bool = True) -> Resource:
    extra: dict[str, Any] = {}
    if back:
        extra["bodySite"] = coding(SNOMED, "122496007")  # lumbar spine
    return observation(rid, "72514-3", when=ago(days), value=score, unit="{score}", **extra)


def run(
    *resources: Resource,
    at: datetime = T,
    consumed: frozenset[str] | set[str] = frozenset(),
    config: RuleConfig | None = None,
) -> Assessment:
    return evaluate(
        PATIENT, list(resources), at, config=config or load_config(), consumed=frozenset(consumed)
    )


def codes(assessment: Assessment) -> list[str]:
    return [f.code for f in assessment.findings]


def finding(assessment: Assessment, code: str) -> Finding:
    matches = [f for f in assessment.findings if f.code == code]
    assert len(matches) == 1, f"expected one {code}, got {codes(assessment)}"
    return matches[0]


def refs(found: Finding) -> list[str]:
    return [e.reference for e in found.evidence]


def flag_codes(assessment: Assessment) -> list[str]:
    return [f.code for f in assessment.red_flags]
