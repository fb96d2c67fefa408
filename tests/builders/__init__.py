"""The one package of test-data builders.

This module: FHIR R4 resources for the API tiers (Patient, Condition, lab Observation with a
UCUM unit, transaction Bundle, the back-pain story), dated relative to a given time and with the
patient id as an argument. Submodules, for the other tiers:

- `tests.builders.rules`: resources of one patient at a fixed time for the rule engine
  (Observations with units, comparators and reference ranges; `run`, `finding`).
- `tests.builders.findings`: hand-built Findings/Assessments, the in-memory store and the
  `Patient` stand-in of the alert tests.
- `tests.builders.stories`: whole alert stories (life cycle, every kind of alert, random).
- `tests.builders.subscriptions`: Subscription bodies and the delivery log.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
ICD9 = "http://hl7.org/fhir/sid/icd-9-cm"
VER_STATUS = "http://terminology.hl7.org/CodeSystem/condition-ver-status"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def days_ago(n: float, now: datetime | None = None) -> str:
    return iso((now or datetime.now(UTC)) - timedelta(days=n))


def patient(pid: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [{"system": "urn:test:mrn", "value": pid}],
        "gender": "female",
    }


def condition(
    cid: str,
    pid: str,
    code: str,
    system: str = SNOMED,
    onset: str | None = None,
    verification: str = "confirmed",
) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "Condition",
        "id": cid,
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "verificationStatus": {
            "coding": [
                {
                    "system": VER_STATUS,
                    "code": verification,
                }
            ]
        },
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": f"Patient/{pid}"},
    }
    if onset:
        res["onsetDateTime"] = onset
    return res


def breast_cancer(cid: str, pid: str, onset: str) -> dict[str, Any]:
    return condition(cid, pid, "254837009", onset=onset)


def back_pain(cid: str, pid: str, onset: str) -> dict[str, Any]:
    return condition(cid, pid, "161891005", onset=onset)


def lab(
    oid: str,
    pid: str,
    loinc: str,
    value: float,
    unit: str,
    when: str,
    status: str = "final",
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": status,
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": LOINC, "code": loinc}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
    }


def calcium(
    oid: str, pid: str, value: float = 9.4, when: str = "2026-01-01T00:00:00Z"
) -> dict[str, Any]:
    """A total calcium in mg/dL (LOINC 17861-6)."""
    return lab(oid, pid, "17861-6", value, "mg/dL", when)


def without_id(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource as a client POSTs it: the server assigns the id."""
    return {k: v for k, v in resource.items() if k != "id"}


def entry(
    method: str,
    url: str,
    resource: dict[str, Any] | None = None,
    *,
    full_url: str | None = None,
    **request: Any,
) -> dict[str, Any]:
    """One Bundle entry; `request` adds ifNoneExist, ifMatch... to its request."""
    out: dict[str, Any] = {}
    if full_url is not None:
        out["fullUrl"] = full_url
    if resource is not None:
        out["resource"] = resource
    out["request"] = {"method": method, "url": url, **request}
    return out


def transaction(*resources: dict[str, Any], method: str = "PUT") -> dict[str, Any]:
    entries = []
    for r in resources:
        if method == "PUT":
            entries.append(
                {
                    "fullUrl": f"urn:uuid:{r['resourceType'].lower()}-{r['id']}",
                    "resource": r,
                    "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
                }
            )
        else:
            body = {k: v for k, v in r.items() if k != "id"}
            entries.append(
                {
                    "fullUrl": f"urn:uuid:{r['id']}",
                    "resource": body,
                    "request": {"method": "POST", "url": r["resourceType"]},
                }
            )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def back_pain_story(pid: str, now: datetime | None = None) -> dict[str, Any]:
    """A breast-cancer survivor (diagnosed 3 years ago) with new back pain 2 days ago."""
    return transaction(
        patient(pid),
        breast_cancer(f"{pid}-bc", pid, days_ago(3 * 365, now)),
        back_pain(f"{pid}-bp", pid, days_ago(2, now)),
    )
