"""Writes → outbox → in-process worker → Flag + CommunicationRequest, through the real API."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from service.store import outbox
from service.store.db import transaction
from tests.builders import back_pain_story, breast_cancer, days_ago, patient
from tests.builders import transaction as tx
from tests.conftest import wait_idle


def _alerts(client: TestClient, headers: dict[str, str], pid: str) -> tuple[list[Any], list[Any]]:
    flags = client.get(f"/fhir/Flag?patient={pid}", headers=headers).json()
    crs = client.get(f"/fhir/CommunicationRequest?patient={pid}", headers=headers).json()
    return [e["resource"] for e in flags.get("entry", [])], [
        e["resource"] for e in crs.get("entry", [])
    ]


def test_back_pain_story_raises_flag_and_request(
    client: TestClient, headers: dict[str, str]
) -> None:
    r = client.post("/fhir", json=back_pain_story("pp1"), headers=headers)
    assert r.status_code == 200, r.text
    wait_idle(client, headers)
    flags, crs = _alerts(client, headers, "pp1")
    assert len(flags) == 1 and len(crs) == 1
    flag, cr = flags[0], crs[0]
    assert flag["status"] == "active"
    assert flag["subject"]["reference"] == "Patient/pp1"
    assert cr["status"] == "active" and cr["priority"] == "urgent"
    assert cr["about"][0]["reference"] == f"Flag/{flag['id']}"
    assert {c["code"] for rc in cr["reasonCode"] for c in rc["coding"]} == {"new-back-pain"}
    assert {ref["reference"] for ref in cr["reasonReference"]} == {"Condition/pp1-bp"}
    assert cr["recipient"][0]["reference"] == "CareTeam/oncology"
    assert "back pain" in cr["payload"][0]["contentString"].lower()
    # flag-detail extension cites the evidence
    details = [
        e["valueReference"]["reference"]
        for e in flag.get("extension", [])
        if e["url"] == "http://hl7.org/fhir/StructureDefinition/flag-detail"
    ]
    assert details == ["Condition/pp1-bp"]


def test_reposting_the_same_transaction_adds_no_alerts(
    client: TestClient, headers: dict[str, str]
) -> None:
    story = back_pain_story("pp2")
    for _ in range(3):
        assert client.post("/fhir", json=story, headers=headers).status_code == 200
        wait_idle(client, headers)
    flags, crs = _alerts(client, headers, "pp2")
    assert len(flags) == 1 and len(crs) == 1
    assert flags[0]["meta"]["versionId"] == "1" and crs[0]["meta"]["versionId"] == "1"


def test_not_eligible_then_eligible_later(client: TestClient, headers: dict[str, str]) -> None:
    """Data of a patient without breast cancer is kept, and judged again when the history
    arrives later."""
    bundle = back_pain_story("pp3")
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["id"] != "pp3-bc"]
    client.post("/fhir", json=bundle, headers=headers)
    wait_idle(client, headers)
    assert _alerts(client, headers, "pp3") == ([], [])
    late = tx(breast_cancer("pp3-bc", "pp3", days_ago(900)))
    client.post("/fhir", json=late, headers=headers)
    wait_idle(client, headers)
    flags, crs = _alerts(client, headers, "pp3")
    assert len(flags) == 1 and len(crs) == 1


def test_acknowledge_and_close_through_the_api(client: TestClient, headers: dict[str, str]) -> None:
    client.post("/fhir", json=back_pain_story("pp4"), headers=headers)
    wait_idle(client, headers)
    flags, crs = _alerts(client, headers, "pp4")
    cr = {**crs[0], "status": "completed"}
    r = client.put(
        f"/fhir/CommunicationRequest/{cr['id']}",
        json=cr,
        headers={**headers, "If-Match": f'W/"{crs[0]["meta"]["versionId"]}"'},
    )
    assert r.status_code == 200
    flag_patch = [{"op": "replace", "path": "/status", "value": "inactive"}]
    r = client.patch(
        f"/fhir/Flag/{flags[0]['id']}",
        json=flag_patch,
        headers={**headers, "Content-Type": "application/json-patch+json"},
    )
    assert r.status_code == 200
    wait_idle(client, headers)
    flags, crs = _alerts(client, headers, "pp4")
    assert flags[0]["status"] == "inactive" and flags[0]["period"].get("end")
    assert crs[0]["status"] == "completed"
    # Re-posting the same (now consumed) evidence does not reopen it.
    client.post("/fhir", json=back_pain_story("pp4"), headers=headers)
    wait_idle(client, headers)
    flags, crs = _alerts(client, headers, "pp4")
    assert [f["status"] for f in flags] == ["inactive"] and len(crs) == 1


def test_patients_without_alert_history_stay_quiet(
    client: TestClient, headers: dict[str, str]
) -> None:
    client.post("/fhir", json=tx(patient("pp5")), headers=headers)
    wait_idle(client, headers)
    assert _alerts(client, headers, "pp5") == ([], [])


def test_backlog_counts_pending_patients(
    client: TestClient, headers: dict[str, str], settings: Any
) -> None:
    factory = client.app.state.session_factory  # type: ignore[attr-defined]
    with transaction(factory) as session:
        outbox.enqueue(session, ["x1", "x2"])
        assert outbox.backlog(session) == 2
    wait_idle(client, headers)


def test_outbox_ids_are_never_reused(client: TestClient, headers: dict[str, str]) -> None:
    """A deleted outbox row's id must not come back: the relay marks "rows up to N" as handed
    off after the hand-off, and a reused id would hide a newer write from evaluation."""
    factory = client.app.state.session_factory  # type: ignore[attr-defined]
    from sqlalchemy import func, select

    from service.store.models import Outbox

    with transaction(factory) as session:
        outbox.enqueue(session, ["reuse"])
        first = session.scalar(select(func.max(Outbox.pk)))
    wait_idle(client, headers)  # evaluated, row deleted
    with transaction(factory) as session:
        outbox.enqueue(session, ["reuse"])
        second = session.scalar(select(func.max(Outbox.pk)))
    assert second is not None and first is not None and second > first
    wait_idle(client, headers)


def test_consecutive_writes_for_one_patient_are_all_evaluated(
    client: TestClient, headers: dict[str, str]
) -> None:
    story = back_pain_story("pp6")
    story["entry"] = [e for e in story["entry"] if e["resource"]["id"] != "pp6-bp"]
    for _ in range(5):
        client.post("/fhir", json=story, headers=headers)
    pain = back_pain_story("pp6")
    pain["entry"] = [e for e in pain["entry"] if e["resource"]["id"] == "pp6-bp"]
    client.post("/fhir", json=pain, headers=headers)
    wait_idle(client, headers, timeout=20)  # would hang for redispatch_after if a write was lost
    flags, _crs = _alerts(client, headers, "pp6")
    assert len(flags) == 1
