"""The worklist page through the real app: what it shows, its order, and the two actions
(read back through /fhir, the same resources every other client sees)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.api.web.conftest import USERS
from tests.api.web.support import ORIGIN, hidden_fields, planted_alert, sign_in
from tests.builders import back_pain_story, days_ago, lab, transaction
from tests.conftest import wait_idle


def _page(client: TestClient) -> str:
    r = client.get("/worklist")
    assert r.status_code == 200, r.text
    return r.text


def _section(html: str, heading_id: str) -> str:
    start = html.index(f'id="{heading_id}"')
    end = html.find("</section>", start)
    return html[start:end]


def test_alerts_sorted_by_priority_then_oldest_first(
    client: TestClient, headers: dict[str, str]
) -> None:
    planted = [
        ("routine-old", "routine", 120),
        ("stat-new", "stat", 1),
        ("urgent-old", "urgent", 72),
        ("urgent-new", "urgent", 24),
        ("asap-mid", "asap", 2),
        ("stat-old", "stat", 5),
    ]
    resources = []
    for pid, priority, hours in planted:
        flag, request = planted_alert(pid, priority, hours, f"Summary for {pid}.")
        resources += [flag, request]
    assert client.post("/fhir", json=transaction(*resources), headers=headers).status_code == 200
    wait_idle(client, headers)
    assert sign_in(client, "nurse", USERS["nurse"]).status_code == 303

    waiting = _section(_page(client), "waiting-heading")
    order = re.findall(r'<li class="alert prio-\w+ status-\w+" id="flag-flag-([\w-]+)"', waiting)
    assert order == ["stat-old", "stat-new", "asap-mid", "urgent-old", "urgent-new", "routine-old"]
    # Priority as colour (class) and as a word.
    assert re.search(r'class="cell badge prio-stat">.*?STAT</span>', waiting)
    assert re.search(r'class="cell badge prio-urgent">.*?Urgent</span>', waiting)
    assert "Summary for asap-mid." in waiting

    # The fragment the page polls has the same order, and says when nothing changed.
    fragment = client.get("/worklist/fragment")
    assert fragment.status_code == 200
    assert (
        re.findall(r'<li class="alert prio-\w+ status-\w+" id="flag-flag-([\w-]+)"', fragment.text)
        == order
    )
    version = fragment.headers["x-worklist-version"]
    unchanged = client.get("/worklist/fragment", params={"since": version})
    assert unchanged.status_code == 204 and unchanged.content == b""


def test_page_shows_patient_summary_evidence_and_trends(
    client: TestClient, headers: dict[str, str]
) -> None:
    pid = "shown-patient"
    story = back_pain_story(pid)
    story["entry"][0]["resource"]["name"] = [{"given": ["Ada"], "family": "Lovelace"}]
    story["entry"] += transaction(
        lab("ca-old", pid, "17861-6", 9.6, "mg/dL", days_ago(90)),
        lab("ca-new", pid, "2000-8", 2.9, "mmol/L", days_ago(4)),  # 11.6 mg/dL
        lab("alp-old", pid, "6768-6", 110, "U/L", days_ago(80)),
        lab("alp-new", pid, "6768-6", 300, "U/L", days_ago(3)),
    )["entry"]
    assert client.post("/fhir", json=story, headers=headers).status_code == 200
    wait_idle(client, headers)
    request = client.get(
        f"/fhir/CommunicationRequest?patient={pid}&status=active", headers=headers
    ).json()["entry"][0]["resource"]
    assert sign_in(client, "nurse", USERS["nurse"]).status_code == 303
    html = _page(client)

    assert "Ada Lovelace" in html and f"Patient/{pid}" in html
    summary = request["payload"][0]["contentString"]
    assert summary.splitlines()[0] in html
    assert "New back pain" in html  # a finding
    # Evidence with its dates and values, read from the stored records.
    evidence = html[html.index("<caption>Evidence</caption>") :]
    assert "Observation/ca-new" in evidence and "2.9 mmol/L" in evidence
    assert "Observation/alp-new" in evidence and "300 U/L" in evidence
    assert f"Condition/{pid}-bp" in evidence
    assert days_ago(4)[:10] in evidence
    # The trends: mmol/L drawn in mg/dL, with the upper limits.
    assert "<svg" in html and "<polyline" in html
    assert "11.6 mg/dL" in html and "upper limit 10.5 mg/dL" in html
    assert "upper limit 147 U/L" in html


def test_bone_specific_alp_has_its_own_trend_apart_from_total_alp(
    client: TestClient, headers: dict[str, str]
) -> None:
    """clinical-rules §8: bone-specific ALP (LOINC 1777-2) is its own analyte, so the page draws
    it as its own line with its own limit, never on the total-ALP line."""
    pid = "bone-alp-patient"
    story = back_pain_story(pid)
    story["entry"] += transaction(
        lab("alp-total", pid, "6768-6", 120, "U/L", days_ago(60)),
        lab("alp-bone-old", pid, "1777-2", 14, "U/L", days_ago(50)),
        lab("alp-bone-new", pid, "1777-2", 31, "U/L", days_ago(5)),
    )["entry"]
    story["entry"][-1]["resource"]["referenceRange"] = [{"high": {"value": 20, "unit": "U/L"}}]
    assert client.post("/fhir", json=story, headers=headers).status_code == 200
    wait_idle(client, headers)
    assert sign_in(client, "nurse", USERS["nurse"]).status_code == 303
    html = _page(client)
    card = html[html.index(f"Patient/{pid}") :]
    total = card[card.index("<strong>ALP (U/L)</strong>") :]
    total = total[: total.index("</figcaption>")]
    assert "1 result; latest 120 U/L" in total and "upper limit 147 U/L" in total
    bone = card[card.index("<strong>Bone-specific ALP (U/L)</strong>") :]
    bone = bone[: bone.index("</figcaption>")]
    assert "2 results" in bone and "latest 31.0 U/L" in bone
    assert "above the upper limit 20.0 U/L" in bone


def test_acknowledge_then_close_change_the_fhir_resources(
    client: TestClient, headers: dict[str, str]
) -> None:
    pid = "acted-on-patient"
    assert client.post("/fhir", json=back_pain_story(pid), headers=headers).status_code == 200
    wait_idle(client, headers)
    assert sign_in(client, "nurse", USERS["nurse"]).status_code == 303
    html = _page(client)
    assert pid in _section(html, "waiting-heading")
    ack = hidden_fields(html, "/worklist/acknowledge")[0]

    r = client.post("/worklist/acknowledge", data=ack, headers=ORIGIN, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/worklist?done=acknowledged"
    request = client.get(f"/fhir/CommunicationRequest/{ack['id']}", headers=headers).json()
    assert request["status"] == "completed"
    assert request["meta"]["versionId"] == str(int(ack["version"]) + 1)
    assert request["note"][-1]["authorString"] == "nurse"
    wait_idle(client, headers)  # the acknowledgement was queued for evaluation, like a PUT

    html = client.get("/worklist?done=acknowledged").text
    assert "Alert acknowledged." in html
    assert pid not in _section(html, "waiting-heading")
    assert pid in _section(html, "open-heading")
    # Acknowledging again (a stale page) changes nothing.
    again = client.post("/worklist/acknowledge", data=ack, headers=ORIGIN)
    assert "already been acknowledged" in again.text

    close = hidden_fields(html, "/worklist/close")[0]
    stale = {**close, "version": str(int(close["version"]) + 5)}
    r = client.post("/worklist/close", data=stale, headers=ORIGIN, follow_redirects=False)
    assert r.headers["location"] == "/worklist?done=conflict"
    assert client.get(f"/fhir/Flag/{close['id']}", headers=headers).json()["status"] == "active"

    r = client.post("/worklist/close", data=close, headers=ORIGIN, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/worklist?done=closed"
    flag = client.get(f"/fhir/Flag/{close['id']}", headers=headers).json()
    assert flag["status"] == "inactive" and flag["period"]["end"]
    wait_idle(client, headers)
    html = client.get("/worklist?done=closed").text
    assert "Alert closed." in html and pid not in html


def test_closing_queues_the_patient_for_evaluation_like_an_api_write(
    client: TestClient, headers: dict[str, str]
) -> None:
    """Close without acknowledging: the write's outbox row makes the worker see the closed
    Flag and revoke the request still open (spec §6), so the page left nothing half-done."""
    pid = "closed-unacknowledged"
    assert client.post("/fhir", json=back_pain_story(pid), headers=headers).status_code == 200
    wait_idle(client, headers)
    assert sign_in(client, "nurse", USERS["nurse"]).status_code == 303
    html = _page(client)
    close = hidden_fields(html, "/worklist/close")[0]
    request_id = hidden_fields(html, "/worklist/acknowledge")[0]["id"]

    r = client.post("/worklist/close", data=close, headers=ORIGIN, follow_redirects=False)
    assert r.headers["location"] == "/worklist?done=closed"
    wait_idle(client, headers)
    request = client.get(f"/fhir/CommunicationRequest/{request_id}", headers=headers).json()
    assert request["status"] == "revoked"
    assert pid not in _page(client)
