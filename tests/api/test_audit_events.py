"""Who did what (issue 13): every acknowledgement, snooze, dismissal, close and escalation
writes an R4 AuditEvent, served read-only at /fhir/AuditEvent with its own scope."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from service.audit import SERVICE_AGENT, alert_action
from service.auth import mint
from service.config import Settings
from service.store.db import session_factory
from tests.builders import back_pain_story
from tests.conftest import R4Validator, wait_idle
from workers.escalation import sweep

PATCH = "application/json-patch+json"


def _alert(client: TestClient, headers: dict[str, str], pid: str) -> dict[str, Any]:
    assert client.post("/fhir", json=back_pain_story(pid), headers=headers).status_code == 200
    wait_idle(client, headers)
    r = client.get(f"/fhir/CommunicationRequest?patient={pid}", headers=headers)
    (entry,) = r.json()["entry"]
    return dict(entry["resource"])


def _events(client: TestClient, headers: dict[str, str], query: str) -> list[dict[str, Any]]:
    r = client.get(f"/fhir/AuditEvent?{query}", headers=headers)
    assert r.status_code == 200, r.text
    return [e["resource"] for e in r.json().get("entry", [])]


def _action(event: dict[str, Any]) -> str:
    return str(event["subtype"][0]["code"])


def _set_status(
    client: TestClient, headers: dict[str, str], ref: str, status: str
) -> dict[str, Any]:
    r = client.patch(
        f"/fhir/{ref}",
        json=[{"op": "replace", "path": "/status", "value": status}],
        headers={**headers, "Content-Type": PATCH},
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_acknowledge_snooze_and_close_are_audited_with_their_agent(
    client: TestClient, headers: dict[str, str], settings: Settings, r4_validate: R4Validator
) -> None:
    request = _alert(client, headers, "audit-1")
    rid = request["id"]
    flag_ref = request["about"][0]["reference"]
    assert _events(client, headers, "patient=audit-1") == []  # the alert itself is not an action

    snoozed = _set_status(client, headers, f"CommunicationRequest/{rid}", "on-hold")
    _set_status(client, headers, f"CommunicationRequest/{rid}", "active")  # not an action
    acked = _set_status(client, headers, f"CommunicationRequest/{rid}", "completed")
    _set_status(client, headers, flag_ref, "inactive")
    wait_idle(client, headers)

    events = _events(client, headers, "patient=audit-1")
    by_action = {_action(e): e for e in events}
    assert sorted(by_action) == ["acknowledge", "close", "snooze"] and len(events) == 3
    snooze, ack, close = by_action["snooze"], by_action["acknowledge"], by_action["close"]
    assert ack["entity"][0]["what"]["reference"] == (
        f"CommunicationRequest/{rid}/_history/{acked['meta']['versionId']}"
    )
    assert snooze["entity"][0]["what"]["reference"].endswith(
        f"/_history/{snoozed['meta']['versionId']}"
    )
    assert close["entity"][0]["what"]["reference"].startswith(f"{flag_ref}/_history/")
    assert ack["entity"][1]["what"]["reference"] == "Patient/audit-1"
    assert ack["agent"][0]["who"]["display"] == "fhir-alerts-cli"  # the token's subject
    assert ack["outcome"] == "0"

    # Search by entity (any version or one), agent, action and date.
    by_entity = _events(client, headers, f"entity=CommunicationRequest/{rid}")
    assert sorted(_action(e) for e in by_entity) == ["acknowledge", "snooze"]
    assert [e["id"] for e in _events(client, headers, f"entity={flag_ref}")] == [close["id"]]
    assert len(_events(client, headers, "agent=fhir-alerts-cli&patient=audit-1")) == 3
    assert _events(client, headers, "agent=someone-else") == []
    assert [e["id"] for e in _events(client, headers, "action=acknowledge")] == [ack["id"]]
    today = ack["recorded"][:10]
    assert len(_events(client, headers, f"date={today}&patient=audit-1")) == 3
    assert _events(client, headers, "date=lt2020-01-01") == []
    read = client.get(f"/fhir/AuditEvent/{ack['id']}", headers=headers)
    assert read.status_code == 200 and read.json()["id"] == ack["id"]
    r4_validate(events)


def test_escalations_are_audited_as_the_service(
    client: TestClient, headers: dict[str, str], settings: Settings, r4_validate: R4Validator
) -> None:
    request = _alert(client, headers, "audit-2")
    authored = datetime.fromisoformat(request["authoredOn"].replace("Z", "+00:00"))
    factory = session_factory(settings.resolved_database_url)
    (escalation,) = sweep(factory, settings=settings, now=authored + timedelta(hours=4)).escalated
    (event,) = _events(client, headers, "patient=audit-2")
    assert _action(event) == "escalate"
    assert event["action"] == "C"
    assert event["entity"][0]["what"]["reference"] == f"{escalation}/_history/1"
    assert event["agent"][0]["who"]["reference"] == "Device/fhir-alerts"
    assert _events(client, headers, f"agent={SERVICE_AGENT}") == []  # devices by reference
    assert len(_events(client, headers, "agent=Device/fhir-alerts")) == 1
    r4_validate([event])


def test_audit_events_are_read_only_and_need_their_scope(
    client: TestClient, headers: dict[str, str], settings: Settings
) -> None:
    request = _alert(client, headers, "audit-3")
    _set_status(client, headers, f"CommunicationRequest/{request['id']}", "completed")
    (event,) = _events(client, headers, "patient=audit-3")
    body = {k: v for k, v in event.items() if k != "meta"}
    for r in (
        client.put(f"/fhir/AuditEvent/{event['id']}", json=body, headers=headers),
        client.post("/fhir/AuditEvent", json=body, headers=headers),
        client.delete(f"/fhir/AuditEvent/{event['id']}", headers=headers),
        client.patch(
            f"/fhir/AuditEvent/{event['id']}",
            json=[{"op": "replace", "path": "/outcome", "value": "8"}],
            headers={**headers, "Content-Type": PATCH},
        ),
    ):
        assert r.status_code == 405, r.text
        assert r.json()["resourceType"] == "OperationOutcome"
    assert client.get(f"/fhir/AuditEvent/{event['id']}", headers=headers).json()["outcome"] == "0"

    secret = settings.signing_secret()
    only_audit = {"Authorization": f"Bearer {mint(secret, scope='system/AuditEvent.read')}"}
    assert client.get(f"/fhir/AuditEvent/{event['id']}", headers=only_audit).status_code == 200
    assert client.get("/fhir/AuditEvent?patient=audit-3", headers=only_audit).status_code == 200
    assert client.get("/fhir/Flag?patient=audit-3", headers=only_audit).status_code == 403
    no_audit = {"Authorization": f"Bearer {mint(secret, scope='system/Flag.read')}"}
    assert client.get(f"/fhir/AuditEvent/{event['id']}", headers=no_audit).status_code == 403


def test_alert_action_names_only_the_alert_actions() -> None:
    active = {"status": "active"}
    assert alert_action("CommunicationRequest", active, {"status": "completed"}) == "acknowledge"
    assert alert_action("CommunicationRequest", active, {"status": "on-hold"}) == "snooze"
    assert alert_action("CommunicationRequest", {"status": "on-hold"}, active) is None
    assert alert_action("CommunicationRequest", active, {"status": "revoked"}) is None
    assert alert_action("CommunicationRequest", active, active) is None
    assert alert_action("CommunicationRequest", {"status": "completed"}, active) is None
    assert alert_action("CommunicationRequest", None, active) is None
    assert alert_action("Flag", active, {"status": "inactive"}) == "close"
    assert alert_action("Flag", active, {"status": "entered-in-error"}) == "close"
    assert alert_action("Flag", None, {"status": "inactive"}) is None
    assert alert_action("Observation", active, {"status": "completed"}) is None
