"""Criteria parsing and matching: pure, no database."""

from __future__ import annotations

from typing import Any

import pytest

from service.fhir.index import extract
from service.subscriptions.criteria import CriteriaError, parse_criteria

ALERT_SYSTEM = "https://fhir-alerts.example.org/fhir/CodeSystem/alert"


def _cr(status: str = "active", priority: str = "stat", pid: str = "p1") -> dict[str, Any]:
    return {
        "resourceType": "CommunicationRequest",
        "id": "cr1",
        "status": status,
        "priority": priority,
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/communication-category",
                        "code": "alert",
                    }
                ]
            }
        ],
        "subject": {"reference": f"Patient/{pid}"},
    }


def _flag(status: str = "active", pid: str = "p1") -> dict[str, Any]:
    return {
        "resourceType": "Flag",
        "id": "f1",
        "status": status,
        "code": {"coding": [{"system": ALERT_SYSTEM, "code": "bone-metastasis-risk"}]},
        "subject": {"reference": f"Patient/{pid}"},
    }


def _matches(criteria: str, resource: dict[str, Any]) -> bool:
    rtype, rid = resource["resourceType"], resource["id"]
    return parse_criteria(criteria).matches(rtype, rid, extract(rtype, rid, resource))


@pytest.mark.parametrize(
    ("status", "priority", "expected"),
    [
        ("active", "stat", True),
        ("active", "asap", True),
        ("active", "urgent", False),
        ("active", "routine", False),
        ("completed", "stat", False),
        ("revoked", "asap", False),
    ],
)
def test_status_and_priority_are_anded_values_ored(
    status: str, priority: str, expected: bool
) -> None:
    criteria = "CommunicationRequest?status=active&priority=stat,asap"
    assert _matches(criteria, _cr(status, priority)) is expected


def test_flag_status() -> None:
    assert _matches("Flag?status=active", _flag("active"))
    assert not _matches("Flag?status=active", _flag("inactive"))
    assert _matches("Flag?status=active,inactive", _flag("inactive"))


def test_type_must_match() -> None:
    assert not _matches("Flag?status=active", _cr("active"))
    assert not _matches("CommunicationRequest?status=active", _flag("active"))


def test_bare_type_matches_every_version() -> None:
    assert _matches("Flag", _flag("inactive"))
    assert _matches("CommunicationRequest?", _cr("completed", "routine"))


def test_token_with_system_code_patient_and_id() -> None:
    assert _matches(f"Flag?code={ALERT_SYSTEM}|bone-metastasis-risk", _flag())
    assert _matches(f"Flag?code={ALERT_SYSTEM}|", _flag())
    assert not _matches("Flag?code=http://other|bone-metastasis-risk", _flag())
    assert _matches("Flag?code=bone-metastasis-risk", _flag())
    assert _matches("CommunicationRequest?category=alert", _cr())
    assert _matches("Flag?patient=Patient/p1&status=active", _flag(pid="p1"))
    assert _matches("Flag?subject=p1,p2", _flag(pid="p2"))
    assert not _matches("Flag?patient=p1", _flag(pid="p9"))
    assert _matches("Flag?_id=f1", _flag())
    assert not _matches("Flag?_id=f2", _flag())


@pytest.mark.parametrize(
    "criteria",
    [
        "",
        "   ",
        "Observation?code=1234-5",  # not an alert type
        "Patient",
        "flag?status=active",
        "Flag?date=ge2024-01-01",  # time-dependent: not judged per version
        "CommunicationRequest?_lastUpdated=gt2024-01-01",
        "Flag?_count=10",
        "Flag?foo=bar",  # unknown parameter
        "Flag?status:not=active",  # modifiers
        "Flag?status=",  # empty value
        "Flag?patient=Group/1",  # only Patient references
        "CommunicationRequest?priority=stat&",
        "Flag?status",
    ],
)
def test_unsupported_criteria_are_refused(criteria: str) -> None:
    with pytest.raises(CriteriaError):
        parse_criteria(criteria)
