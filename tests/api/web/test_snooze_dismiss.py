"""Snooze and dismiss with a reason from the worklist (issue 13): the same session, CSRF and
If-Match checks as acknowledge; the change is the FHIR CommunicationRequest's."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi.testclient import TestClient

from contract import DISMISS_REASONS, SNOOZE_UNTIL_URL
from service.alert_changes import DISMISS_REASON_SYSTEM
from service.config import Settings
from service.store.db import session_factory
from tests.api.web.conftest import USERS
from tests.api.web.support import ORIGIN, hidden_fields, sign_in
from tests.builders import back_pain_story
from tests.conftest import R4Validator, wait_idle
from workers.escalation import sweep


def _alert_form(client: TestClient, headers: dict[str, str], pid: str) -> dict[str, str]:
    assert client.post("/fhir", json=back_pain_story(pid), headers=headers).status_code == 200
    wait_idle(client, headers)
    assert sign_in(client, "nurse", USERS["nurse"]).status_code == 303
    html = client.get("/worklist").text
    (form,) = [f for f in hidden_fields(html, "/worklist/acknowledge")]
    return form


def test_snooze_puts_the_request_on_hold_until_it_wakes(
    client: TestClient, headers: dict[str, str], settings: Settings, r4_validate: R4Validator
) -> None:
    form = _alert_form(client, headers, "snooze-1")
    before = datetime.now().astimezone()
    data = {**form, "hours": "2", "reason": "Waiting for the ward round"}
    r = client.post("/worklist/snooze", data=data, headers=ORIGIN, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/worklist?done=snoozed"
    request = client.get(f"/fhir/CommunicationRequest/{form['id']}", headers=headers).json()
    assert request["status"] == "on-hold"
    assert request["note"][-1]["authorString"] == "nurse"
    assert "Waiting for the ward round" in request["note"][-1]["text"]
    (until,) = [e["valueDateTime"] for e in request["extension"] if e["url"] == SNOOZE_UNTIL_URL]
    ends = datetime.fromisoformat(until.replace("Z", "+00:00"))
    assert (
        timedelta(hours=2) - timedelta(seconds=5) <= ends - before <= timedelta(hours=2, seconds=60)
    )
    assert "Alert snoozed." in client.get("/worklist?done=snoozed").text
    on_hold = request
    wait_idle(client, headers)

    factory = session_factory(settings.resolved_database_url)
    assert sweep(factory, settings=settings, now=ends - timedelta(seconds=1)).woken == []
    assert sweep(factory, settings=settings, now=ends).woken == [
        f"CommunicationRequest/{form['id']}"
    ]
    request = client.get(f"/fhir/CommunicationRequest/{form['id']}", headers=headers).json()
    assert request["status"] == "active"
    r4_validate([on_hold, request])


def test_snooze_refuses_bad_input_and_stale_pages(
    client: TestClient, headers: dict[str, str]
) -> None:
    form = _alert_form(client, headers, "snooze-2")
    for bad in (
        {"hours": "0", "reason": "x"},
        {"hours": "-1", "reason": "x"},
        {"hours": "soon", "reason": "x"},
        {"hours": "200", "reason": "x"},  # longer than 7 days
        {"hours": "2", "reason": "   "},  # a reason is required
    ):
        r = client.post(
            "/worklist/snooze", data={**form, **bad}, headers=ORIGIN, follow_redirects=False
        )
        assert r.headers["location"] == "/worklist?done=invalid", bad
    stale = {**form, "version": str(int(form["version"]) + 3), "hours": "1", "reason": "x"}
    r = client.post("/worklist/snooze", data=stale, headers=ORIGIN, follow_redirects=False)
    assert r.headers["location"] == "/worklist?done=conflict"
    no_csrf = {k: v for k, v in form.items() if k != "csrf_token"} | {"hours": "1", "reason": "x"}
    assert client.post("/worklist/snooze", data=no_csrf, headers=ORIGIN).status_code == 403
    request = client.get(f"/fhir/CommunicationRequest/{form['id']}", headers=headers).json()
    assert request["status"] == "active"
    assert request["meta"]["versionId"] == form["version"]


def test_dismiss_closes_the_alert_with_a_coded_reason(
    client: TestClient, headers: dict[str, str], r4_validate: R4Validator
) -> None:
    form = _alert_form(client, headers, "dismiss-1")
    data = {**form, "reason": "duplicate", "text": "Same as the alert raised by the GP"}
    r = client.post("/worklist/dismiss", data=data, headers=ORIGIN, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/worklist?done=dismissed"
    request = client.get(f"/fhir/CommunicationRequest/{form['id']}", headers=headers).json()
    assert request["status"] == "completed"
    assert request["statusReason"]["coding"] == [
        {
            "system": DISMISS_REASON_SYSTEM,
            "code": "duplicate",
            "display": DISMISS_REASONS["duplicate"],
        }
    ]
    assert request["statusReason"]["text"] == "Same as the alert raised by the GP"
    assert request["note"][-1]["authorString"] == "nurse"
    flag = client.get(f"/fhir/{request['about'][0]['reference']}", headers=headers).json()
    assert flag["status"] == "inactive" and flag["period"]["end"]
    r4_validate([request, flag])
    wait_idle(client, headers)
    # The episode is closed by the worker; the dismissed request stays completed.
    request = client.get(f"/fhir/CommunicationRequest/{form['id']}", headers=headers).json()
    assert request["status"] == "completed"
    assert "dismiss-1" not in client.get("/worklist").text
    # Who did what: both writes are audited with the signed-in nurse as the agent.
    r = client.get("/fhir/AuditEvent?patient=dismiss-1", headers=headers)
    events = {e["resource"]["subtype"][0]["code"]: e["resource"] for e in r.json()["entry"]}
    assert sorted(events) == ["close", "dismiss"] and len(r.json()["entry"]) == 2
    assert {e["agent"][0]["who"]["display"] for e in events.values()} == {"nurse"}
    assert events["dismiss"]["entity"][0]["description"] == "dismiss reason: duplicate"


def test_dismiss_refuses_an_unknown_reason_and_other_without_text(
    client: TestClient, headers: dict[str, str]
) -> None:
    form = _alert_form(client, headers, "dismiss-2")
    for bad in ({"reason": "bored"}, {"reason": "other", "text": " "}, {"reason": ""}):
        r = client.post(
            "/worklist/dismiss", data={**form, **bad}, headers=ORIGIN, follow_redirects=False
        )
        assert r.headers["location"] == "/worklist?done=invalid", bad
    request = client.get(f"/fhir/CommunicationRequest/{form['id']}", headers=headers).json()
    assert request["status"] == "active"
    flag = client.get(f"/fhir/{request['about'][0]['reference']}", headers=headers).json()
    assert flag["status"] == "active"


def test_the_worklist_shows_an_escalated_alert(
    client: TestClient, headers: dict[str, str], settings: Settings
) -> None:
    form = _alert_form(client, headers, "escalated-1")
    request = client.get(f"/fhir/CommunicationRequest/{form['id']}", headers=headers).json()
    authored = datetime.fromisoformat(request["authoredOn"].replace("Z", "+00:00"))
    factory = session_factory(settings.resolved_database_url)
    (ref,) = sweep(factory, settings=settings, now=authored + timedelta(hours=4)).escalated
    r = client.get("/worklist")
    assert r.status_code == 200
    assert "escalated-1" in r.text
    ids = {f["id"] for f in hidden_fields(r.text, "/worklist/acknowledge")}
    assert ids & {form["id"], ref.removeprefix("CommunicationRequest/")}
