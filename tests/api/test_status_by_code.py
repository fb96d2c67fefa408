"""clinical-rules.md §8 through the real API and worker: a verificationStatus `refuted` without
its `system` retracts the alert built on it (Flag inactive, request revoked), exactly like the
coded-with-system status, and a partial retraction re-issues the request at the lower priority
with the change recorded on the Flag."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.builders import back_pain, breast_cancer, days_ago, lab, patient
from tests.builders import transaction as tx
from tests.conftest import wait_idle


def _post(client: TestClient, headers: dict[str, str], *resources: dict[str, Any]) -> None:
    r = client.post("/fhir", json=tx(*resources), headers=headers)
    assert r.status_code == 200, r.text
    wait_idle(client, headers)


def _all(client: TestClient, headers: dict[str, str], rtype: str, pid: str) -> list[Any]:
    r = client.get(f"/fhir/{rtype}?patient={pid}&_count=100", headers=headers)
    assert r.status_code == 200, r.text
    return [e["resource"] for e in r.json().get("entry", [])]


def _put(client: TestClient, headers: dict[str, str], resource: dict[str, Any]) -> None:
    r = client.put(f"/fhir/Condition/{resource['id']}", json=resource, headers=headers)
    assert r.status_code in (200, 201), r.text
    wait_idle(client, headers)


@pytest.mark.parametrize("with_system", [False, True], ids=["no-system", "hl7-system"])
def test_refuted_evidence_retracts_the_alert_with_or_without_system(
    client: TestClient, headers: dict[str, str], with_system: bool
) -> None:
    pid = "sbc1"
    pain = back_pain(f"{pid}-bp", pid, days_ago(3))
    _post(client, headers, patient(pid), breast_cancer(f"{pid}-bc", pid, days_ago(900)), pain)
    assert [f["status"] for f in _all(client, headers, "Flag", pid)] == ["active"]

    coding: dict[str, Any] = {"code": "refuted"}
    if with_system:
        coding["system"] = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
    _put(client, headers, {**pain, "verificationStatus": {"coding": [coding]}})

    flags = _all(client, headers, "Flag", pid)
    requests = _all(client, headers, "CommunicationRequest", pid)
    assert [f["status"] for f in flags] == ["inactive"]
    assert flags[0]["period"].get("end")
    assert [r["status"] for r in requests] == ["revoked"]
    assert requests[0]["note"], "a revoked request says why"


def test_partial_retraction_reissues_at_the_lower_priority(
    client: TestClient, headers: dict[str, str]
) -> None:
    pid = "sbc2"
    pain = back_pain(f"{pid}-bp", pid, days_ago(3))
    calcium = lab(f"{pid}-ca", pid, "17861-6", 13.0, "mg/dL", days_ago(2))
    _post(
        client,
        headers,
        patient(pid),
        breast_cancer(f"{pid}-bc", pid, days_ago(900)),
        pain,
        calcium,
    )
    active = [
        r for r in _all(client, headers, "CommunicationRequest", pid) if r["status"] == "active"
    ]
    assert [r["priority"] for r in active] == ["stat"]

    _post(client, headers, {**calcium, "status": "entered-in-error"})

    requests = _all(client, headers, "CommunicationRequest", pid)
    by_status = sorted((r["status"], r["priority"]) for r in requests)
    assert by_status == [("active", "urgent"), ("revoked", "stat")]
    flag = next(f for f in _all(client, headers, "Flag", pid) if f["status"] == "active")
    history = [e for e in flag["extension"] if e["url"].endswith("/priority-history")]
    last = {x["url"]: x.get("valueCode") for x in history[-1]["extension"]}
    assert (last["from"], last["to"]) == ("stat", "urgent")
