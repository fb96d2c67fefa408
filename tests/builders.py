"""Small builders for test data, dated relative to a given time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


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
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
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
