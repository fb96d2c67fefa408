"""Closed-loop alerts end to end on the embedded default (issue 13): an alert driven past its
acknowledgement deadline with a controlled clock gets exactly one escalation; an acknowledged
one gets none; a snoozed one comes back at expiry. Real HTTP API, real database, the same
`sweep` the embedded thread and the Celery beat task run."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from contract import ESCALATION_URL, SNOOZE_UNTIL_URL
from service.config import Settings
from service.store.db import session_factory
from tests.builders import back_pain_story
from tests.conftest import R4Validator, wait_idle
from workers import tasks
from workers.alerts.escalation import escalation_id
from workers.escalation import DeadlineSweeper, sweep


def _requests(client: TestClient, headers: dict[str, str], pid: str) -> list[dict[str, Any]]:
    r = client.get(f"/fhir/CommunicationRequest?patient={pid}&_count=100", headers=headers)
    assert r.status_code == 200, r.text
    return [e["resource"] for e in r.json().get("entry", [])]


def _alert(client: TestClient, headers: dict[str, str], pid: str) -> dict[str, Any]:
    r = client.post("/fhir", json=back_pain_story(pid), headers=headers)
    assert r.status_code == 200, r.text
    wait_idle(client, headers)
    (request,) = _requests(client, headers, pid)
    assert (request["status"], request["priority"]) == ("active", "urgent")
    return request


def _authored(request: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(request["authoredOn"].replace("Z", "+00:00"))


def _sweep(settings: Settings, now: datetime) -> Any:
    return sweep(session_factory(settings.resolved_database_url), settings=settings, now=now)


def _acknowledge(client: TestClient, headers: dict[str, str], rid: str) -> None:
    r = client.patch(
        f"/fhir/CommunicationRequest/{rid}",
        json=[{"op": "replace", "path": "/status", "value": "completed"}],
        headers={**headers, "Content-Type": "application/json-patch+json"},
    )
    assert r.status_code == 200, r.text


def test_an_overdue_alert_is_escalated_exactly_once(
    client: TestClient, headers: dict[str, str], settings: Settings, r4_validate: R4Validator
) -> None:
    original = _alert(client, headers, "esc-1")
    deadline = _authored(original) + timedelta(hours=4)  # urgent: 4 h by default

    early = _sweep(settings, deadline - timedelta(seconds=1))
    assert early.escalated == []
    assert len(_requests(client, headers, "esc-1")) == 1

    first = _sweep(settings, deadline + timedelta(minutes=1))
    expected = f"CommunicationRequest/{escalation_id(original['id'], deadline)}"
    assert first.escalated == [expected]

    # Later passes, the Celery task's code path included, change nothing.
    assert _sweep(settings, deadline + timedelta(hours=2)).written == 0
    result = tasks.sweep_deadlines.apply(
        kwargs={"now": (deadline + timedelta(days=2)).isoformat(), "settings": settings}
    )
    assert result.successful() and result.result == {
        "escalated": 0,
        "withdrawn": 0,
        "woken": 0,
        "acknowledged": 0,
    }

    requests = {r["id"]: r for r in _requests(client, headers, "esc-1")}
    assert len(requests) == 2
    escalation = requests[expected.removeprefix("CommunicationRequest/")]
    assert escalation["status"] == "active"
    assert escalation["priority"] == "asap"
    assert escalation["basedOn"] == [{"reference": f"CommunicationRequest/{original['id']}"}]
    assert escalation["recipient"] == [{"reference": "CareTeam/oncology"}]
    assert requests[original["id"]]["status"] == "active"  # the original still waits

    flag_ref = original["about"][0]["reference"]
    flag = client.get(f"/fhir/{flag_ref}", headers=headers).json()
    recorded = [e for e in flag["extension"] if e["url"] == ESCALATION_URL]
    assert len(recorded) == 1
    assert flag["status"] == "active"

    # Re-evaluating the patient keeps the Flag's escalation record.
    r = client.post("/fhir", json=back_pain_story("esc-1"), headers=headers)
    assert r.status_code == 200
    wait_idle(client, headers)
    again = client.get(f"/fhir/{flag_ref}", headers=headers).json()
    assert [e for e in again["extension"] if e["url"] == ESCALATION_URL] == recorded
    r4_validate([escalation, again])

    # The nurse acknowledges the original: the escalation is withdrawn, nothing new is made.
    _acknowledge(client, headers, original["id"])
    after = _sweep(settings, deadline + timedelta(days=3))
    assert (after.escalated, after.withdrawn) == ([], [expected])
    statuses = {r["id"]: r["status"] for r in _requests(client, headers, "esc-1")}
    assert sorted(statuses.values()) == ["completed", "revoked"]
    assert _sweep(settings, deadline + timedelta(days=4)).written == 0


def test_an_alert_acknowledged_in_time_is_never_escalated(
    client: TestClient, headers: dict[str, str], settings: Settings
) -> None:
    original = _alert(client, headers, "esc-2")
    _acknowledge(client, headers, original["id"])
    outcome = _sweep(settings, _authored(original) + timedelta(days=30))
    assert outcome.written == 0
    assert [r["status"] for r in _requests(client, headers, "esc-2")] == ["completed"]


def test_a_snoozed_alert_comes_back_at_expiry_and_its_clock_restarts(
    client: TestClient, headers: dict[str, str], settings: Settings
) -> None:
    original = _alert(client, headers, "esc-3")
    authored = _authored(original)
    until = authored + timedelta(hours=6)  # past the 4 h deadline
    snoozed = {k: v for k, v in original.items() if k != "meta"}
    snoozed["status"] = "on-hold"
    snoozed["extension"] = [
        *original.get("extension", []),
        {"url": SNOOZE_UNTIL_URL, "valueDateTime": until.isoformat().replace("+00:00", "Z")},
    ]
    snoozed["note"] = [{"text": "Snoozed: waiting for the morning ward round"}]
    r = client.put(f"/fhir/CommunicationRequest/{original['id']}", json=snoozed, headers=headers)
    assert r.status_code == 200, r.text
    wait_idle(client, headers)

    # Snoozed: no escalation even though the original deadline has passed.
    assert _sweep(settings, authored + timedelta(hours=5)).written == 0
    woke = _sweep(settings, until)
    assert woke.woken == [f"CommunicationRequest/{original['id']}"]
    assert woke.escalated == []  # the deadline restarts from the end of the snooze
    (request,) = _requests(client, headers, "esc-3")
    assert request["status"] == "active"
    assert _sweep(settings, until + timedelta(hours=4) - timedelta(seconds=1)).written == 0
    late = _sweep(settings, until + timedelta(hours=4))
    assert len(late.escalated) == 1


def test_the_embedded_app_runs_the_deadline_sweeper(client: TestClient) -> None:
    sweeper = client.app.state.deadline_sweeper  # type: ignore[attr-defined]
    assert isinstance(sweeper, DeadlineSweeper)
    assert sweeper.run_once() == 0  # real clock: nothing is due, and the pass succeeds


def _careteam(client: TestClient, headers: dict[str, str], members: list[str]) -> None:
    team = {
        "resourceType": "CareTeam",
        "id": "oncology",
        "status": "active",
        "name": "Breast oncology team",
        "participant": [{"member": {"reference": m}} for m in members],
    }
    r = client.put("/fhir/CareTeam/oncology", json=team, headers=headers)
    assert r.status_code in (200, 201), r.text


def test_escalations_go_to_the_stored_careteams_members(
    client: TestClient, headers: dict[str, str], settings: Settings
) -> None:
    _careteam(client, headers, ["PractitionerRole/oncall", "Organization/x", "Practitioner/dr-a"])
    assert client.get("/fhir/CareTeam/oncology", headers=headers).status_code == 200
    found = client.get("/fhir/CareTeam?_id=oncology", headers=headers).json()
    assert [e["resource"]["id"] for e in found["entry"]] == ["oncology"]
    original = _alert(client, headers, "esc-4")
    outcome = _sweep(settings, _authored(original) + timedelta(hours=4))
    (ref,) = outcome.escalated
    escalation = client.get(f"/fhir/{ref}", headers=headers).json()
    assert escalation["recipient"] == [
        {"reference": "PractitionerRole/oncall"},
        {"reference": "Practitioner/dr-a"},
    ]


def test_a_careteam_without_people_falls_back_to_the_configured_reference(
    client: TestClient, headers: dict[str, str], settings: Settings
) -> None:
    _careteam(client, headers, ["Organization/x"])
    original = _alert(client, headers, "esc-5")
    (ref,) = _sweep(settings, _authored(original) + timedelta(hours=4)).escalated
    escalation = client.get(f"/fhir/{ref}", headers=headers).json()
    assert escalation["recipient"] == [{"reference": "CareTeam/oncology"}]


def test_an_invalid_careteam_is_refused(client: TestClient, headers: dict[str, str]) -> None:
    bad = {"resourceType": "CareTeam", "id": "bad", "participant": [{"member": "Practitioner/x"}]}
    r = client.put("/fhir/CareTeam/bad", json=bad, headers=headers)
    assert r.status_code in (400, 422), r.text
    assert r.json()["resourceType"] == "OperationOutcome"


def test_new_alerts_go_to_the_stored_careteams_members_too(
    client: TestClient, headers: dict[str, str]
) -> None:
    before = _alert(client, headers, "route-1")
    assert before["recipient"] == [{"reference": "CareTeam/oncology"}]  # no team stored yet
    _careteam(client, headers, ["Practitioner/cns-1", "PractitionerRole/oncall"])
    after = _alert(client, headers, "route-2")
    assert after["recipient"] == [
        {"reference": "Practitioner/cns-1"},
        {"reference": "PractitionerRole/oncall"},
    ]
    # An alert already made keeps the recipients it was sent to.
    (kept,) = _requests(client, headers, "route-1")
    assert kept["recipient"] == [{"reference": "CareTeam/oncology"}]


def test_acknowledging_the_escalation_closes_the_loop(
    client: TestClient, headers: dict[str, str], settings: Settings
) -> None:
    original = _alert(client, headers, "esc-6")
    deadline = _authored(original) + timedelta(hours=4)
    (ref,) = _sweep(settings, deadline).escalated
    _acknowledge(client, headers, ref.removeprefix("CommunicationRequest/"))
    wait_idle(client, headers)
    after = _sweep(settings, deadline + timedelta(hours=1))
    assert after.acknowledged == [f"CommunicationRequest/{original['id']}"]
    assert after.escalated == [] and after.withdrawn == []
    statuses = sorted(r["status"] for r in _requests(client, headers, "esc-6"))
    assert statuses == ["completed", "completed"]
    assert _sweep(settings, deadline + timedelta(days=5)).written == 0


def test_concurrent_sweeps_make_one_escalation(
    client: TestClient, headers: dict[str, str], settings: Settings
) -> None:
    """Several processes' sweeps at once (here: threads, each its own transactions) serialise
    on the patient's lock; the derived id makes the later ones find the first one's work."""
    from concurrent.futures import ThreadPoolExecutor

    original = _alert(client, headers, "esc-7")
    now = _authored(original) + timedelta(hours=5)
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(lambda _n: _sweep(settings, now), range(4)))
    made = [ref for o in outcomes for ref in o.escalated]
    assert len(made) == 1
    assert all(o.failed == [] for o in outcomes)
    assert len([r for r in _requests(client, headers, "esc-7") if r.get("basedOn")]) == 1
