"""The triage worklist (issue 13): one dense row per alert with MRN, age and sex, the deadline
left or overdue, the recipient; filters and search as query parameters (no JavaScript needed);
the report page showing service/report.py's figures."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from service.config import Settings
from service.store.db import session_factory
from tests.api.web.conftest import USERS
from tests.api.web.support import ORIGIN, hidden_fields, planted_alert, sign_in
from tests.builders import back_pain_story, days_ago, lab, transaction
from tests.conftest import wait_idle
from workers.escalation import sweep

MR = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}


def _patient(pid: str, name: str, mrn: str, born: str, gender: str) -> dict[str, Any]:
    given, family = name.split(" ", 1)
    return {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [
            {"system": "urn:test:insurance", "value": f"INS-{pid}"},
            {"type": MR, "system": "urn:test:mrn", "value": mrn},
        ],
        "name": [{"given": [given], "family": family}],
        "birthDate": born,
        "gender": gender,
    }


def _row(html: str, pid: str) -> str:
    start = html.index(f'id="flag-flag-{pid}"')
    return html[start : html.index('<div class="more"', start)]


def _seed(client: TestClient, headers: dict[str, str]) -> None:
    resources: list[dict[str, Any]] = []
    for pid, name, mrn, born, gender, priority, hours in [
        ("tri-a", "Ada Lovelace", "MRN-1001", "1960-01-15", "female", "stat", 1),  # overdue
        ("tri-b", "Grace Hopper", "MRN-2002", "1975-06-30", "female", "routine", 2),
        ("tri-c", "Mary Somerville", "MRN-3003", "1950", "female", "urgent", 0.5),
    ]:
        flag, request = planted_alert(pid, priority, hours, f"Summary for {pid}.")
        request["recipient"] = [{"reference": "PractitionerRole/oncall", "display": "On-call"}]
        resources += [_patient(pid, name, mrn, born, gender), flag, request]
    assert client.post("/fhir", json=transaction(*resources), headers=headers).status_code == 200
    wait_idle(client, headers)
    assert sign_in(client, "nurse", USERS["nurse"]).status_code == 303


def _years(born: datetime) -> int:
    today = datetime.now(UTC).date()
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def test_each_alert_is_one_row_with_mrn_age_sex_deadline_and_recipient(
    client: TestClient, headers: dict[str, str]
) -> None:
    _seed(client, headers)
    html = client.get("/worklist").text
    a, b = _row(html, "tri-a"), _row(html, "tri-b")
    assert "Ada Lovelace" in a and "MRN-1001" in a and "INS-tri-a" not in a
    assert f"{_years(datetime(1960, 1, 15))} y F" in a
    assert re.search(
        r'class="cell due overdue">(<span class="visually-hidden">Deadline: </span>)\s*<time[^>]*>overdue 45 min</time>',
        a,
    ), a
    assert "On-call" in a
    assert re.search(
        r'class="cell due">(<span class="visually-hidden">Deadline: </span>)\s*<time[^>]*>2 days left</time>',
        b,
    ), b
    assert "overdue" not in b
    # The details sit in the row's own panel, hidden until the row's button opens it.
    assert 'aria-expanded="false" aria-controls="flag-flag-tri-a-more"' in html
    assert '<div class="more" id="flag-flag-tri-a-more" hidden>' in html
    # Snooze and dismiss forms carry the dismiss reasons of the contract.
    assert 'value="not-clinically-relevant"' in a
    assert len(hidden_fields(html, "/worklist/snooze")) == 3


def test_filters_and_search_are_query_parameters(
    client: TestClient, headers: dict[str, str]
) -> None:
    _seed(client, headers)

    def shown(**params: str) -> list[str]:
        r = client.get("/worklist", params=params)
        assert r.status_code == 200
        return re.findall(r'<li class="alert [^"]*" id="flag-flag-([\w-]+)"', r.text)

    assert shown() == ["tri-a", "tri-c", "tri-b"]
    assert shown(priority="routine") == ["tri-b"]
    assert shown(q="hopper") == ["tri-b"]
    assert shown(q="MRN-3003") == ["tri-c"]
    assert shown(priority="stat", q="hopper") == []
    assert shown(priority="nonsense") == ["tri-a", "tri-c", "tri-b"]  # ignored, not an error
    # The page polls a fragment with the same filters.
    assert (
        'data-fragment-url="/worklist/fragment?priority=routine"'
        in client.get("/worklist", params={"priority": "routine"}).text
    )
    assert re.findall(
        r'<li class="alert [^"]*" id="flag-flag-([\w-]+)"',
        client.get("/worklist/fragment?q=Lovelace").text,
    ) == ["tri-a"]

    # Snoozed: the request on hold leaves "open" and shows under "snoozed".
    html = client.get("/worklist").text
    form = next(f for f in hidden_fields(html, "/worklist/snooze") if f["id"] == "cr-tri-b")
    r = client.post(
        "/worklist/snooze",
        data={**form, "hours": "1", "reason": "Ward round"},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert r.headers["location"] == "/worklist?done=snoozed"
    wait_idle(client, headers)
    assert shown(status="snoozed") == ["tri-b"]
    assert shown(status="open") == ["tri-a", "tri-c"]
    assert "Snoozed</span> until" in _row(client.get("/worklist").text, "tri-b")

    # Closed today: a dismissed alert shows there (and nowhere else).
    html = client.get("/worklist").text
    form = next(f for f in hidden_fields(html, "/worklist/dismiss") if f["id"] == "cr-tri-c")
    r = client.post(
        "/worklist/dismiss",
        data={**form, "reason": "duplicate"},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert r.headers["location"] == "/worklist?done=dismissed"
    wait_idle(client, headers)
    assert "tri-c" not in shown()
    assert shown(status="closed") == ["tri-c"]
    closed = client.get("/worklist", params={"status": "closed"}).text
    assert "Closed today" in closed and "/worklist/acknowledge" not in closed


def test_report_page_shows_the_report_figures(client: TestClient, headers: dict[str, str]) -> None:
    assert client.get("/worklist/report", follow_redirects=False).status_code == 303
    for pid in ("rep-1", "rep-2"):  # two alerts raised by the engine (episodes)
        assert client.post("/fhir", json=back_pain_story(pid), headers=headers).status_code == 200
    wait_idle(client, headers)
    assert sign_in(client, "nurse", USERS["nurse"]).status_code == 303
    forms = hidden_fields(client.get("/worklist").text, "/worklist/dismiss")
    assert len(forms) == 2
    client.post("/worklist/dismiss", data={**forms[0], "reason": "duplicate"}, headers=ORIGIN)
    ack = {k: v for k, v in forms[1].items()}
    client.post("/worklist/acknowledge", data=ack, headers=ORIGIN)
    wait_idle(client, headers)
    figures = client.get("/ops/report", headers=headers).json()
    assert figures["alerts"]["total"] == 2 and figures["dismiss_reasons"]["duplicate"] == 1
    page = client.get("/worklist/report")
    assert page.status_code == 200
    text = page.text
    assert '<dd id="r-total">2</dd>' in text
    assert f'<dd id="r-evaluated">{figures["patients_evaluated"]}</dd>' in text
    rate = figures["alerts_per_1000_patients_evaluated"]
    assert f'<dd id="r-rate">{rate}</dd>' in text
    dismissed = text[text.index('id="r-dismiss-table"') :]
    assert "Duplicate of another alert</th><td>1</td>" in dismissed
    by_priority = text[text.index('id="r-priority-table"') : text.index('id="r-finding"')]
    urgent = re.search(r"prio-urgent\">Urgent</span></th>(.*?)</tr>", by_priority, re.S)[1]
    cells = re.findall(r"<td>(.*?)</td>", urgent)
    timing = figures["time_to_acknowledge_seconds"]["urgent"]
    assert cells[:3] == ["2", str(timing["acknowledged"]), str(timing["unacknowledged"])]
    assert timing["acknowledged"] == 2 and cells[3].endswith(" min")
    assert "New back pain</th><td>2</td>" in text


def test_a_single_result_is_a_value_with_its_limit_and_charts_have_labelled_scales(
    client: TestClient, headers: dict[str, str]
) -> None:
    pid = "chart-patient"
    story = back_pain_story(pid)
    story["entry"] += transaction(
        lab("ca-1", pid, "17861-6", 9.6, "mg/dL", days_ago(90)),
        lab("ca-2", pid, "17861-6", 11.6, "mg/dL", days_ago(4)),
        lab("alp-1", pid, "6768-6", 300, "U/L", days_ago(3)),
    )["entry"]
    assert client.post("/fhir", json=story, headers=headers).status_code == 200
    wait_idle(client, headers)
    assert sign_in(client, "nurse", USERS["nurse"]).status_code == 303
    html = client.get("/worklist").text
    figures = re.findall(r'<figure class="trend">(.*?)</figure>', html, re.S)
    calcium = next(f for f in figures if "<strong>Calcium (mg/dL)</strong>" in f)
    alp = next(f for f in figures if "<strong>ALP (U/L)</strong>" in f)
    # Two results: a line on labelled axes (value ticks with the unit, dates, the ULN line).
    assert "<polyline" in calcium
    assert re.findall(r'class="tick">([\d.]+)</text>', calcium) == [
        "9.5",
        "10.0",
        "10.5",
        "11.0",
        "11.5",
    ]
    assert 'class="axis-unit">mg/dL</text>' in calcium and "date of result" in calcium
    assert "ULN 10.5 mg/dL" in calcium
    assert days_ago(90)[:10] in calcium and days_ago(4)[:10] in calcium
    # One result: no chart, the value and its limit in words.
    assert "<svg" not in alp
    single = re.sub(r"\s+", " ", re.search(r'<p class="single high">(.*?)</p>', alp, re.S)[1])
    assert "300 U/L" in single and "above the limit 147 U/L" in single


def test_history_rows_say_who_acknowledged_from_the_audit_trail(
    client: TestClient, headers: dict[str, str]
) -> None:
    """Acknowledged through the API (no worklist note): the row names the AuditEvent's agent."""
    _seed(client, headers)
    request = client.get("/fhir/CommunicationRequest/cr-tri-b", headers=headers).json()
    done = {k: v for k, v in request.items() if k != "meta"} | {"status": "completed"}
    r = client.put("/fhir/CommunicationRequest/cr-tri-b", json=done, headers=headers)
    assert r.status_code == 200, r.text
    wait_idle(client, headers)
    (event,) = [
        e["resource"]
        for e in client.get(
            "/fhir/AuditEvent?entity=CommunicationRequest/cr-tri-b", headers=headers
        ).json()["entry"]
    ]
    agent = event["agent"][0]["who"]["display"]
    html = client.get("/worklist").text
    start = html.index('id="open-heading"')
    row = _row(html[start:], "tri-b")
    when = datetime.fromisoformat(event["recorded"].replace("Z", "+00:00"))
    assert f"Acknowledged by {agent} at {when:%Y-%m-%d %H:%M} UTC" in row


def test_an_alert_past_its_deadline_shows_escalated(
    client: TestClient, headers: dict[str, str], settings: Settings
) -> None:
    """The real deadline sweep escalates an overdue alert; the row says so and the
    "escalated" filter finds it (and "open" no longer does)."""
    for pid in ("esc-1", "esc-2"):
        assert client.post("/fhir", json=back_pain_story(pid), headers=headers).status_code == 200
    wait_idle(client, headers)
    assert sign_in(client, "nurse", USERS["nurse"]).status_code == 303
    first = hidden_fields(client.get("/worklist").text, "/worklist/acknowledge")
    esc2 = next(
        f
        for f in first
        if "esc-2"
        in client.get(f"/fhir/CommunicationRequest/{f['id']}", headers=headers).json()["subject"][
            "reference"
        ]
    )
    client.post("/worklist/snooze", data={**esc2, "hours": "24", "reason": "x"}, headers=ORIGIN)
    factory = session_factory(settings.resolved_database_url)
    result = sweep(factory, settings=settings, now=datetime.now(UTC) + timedelta(hours=5))
    assert len(result.escalated) == 1, result  # urgent: 4 h; the snoozed one waits
    wait_idle(client, headers)

    def shown(status: str) -> str:
        html = client.get("/worklist", params={"status": status}).text
        return " ".join(re.findall(r'<li class="alert [^"]*" id="(flag-[\w-]+)"', html))

    escalated = client.get("/worklist", params={"status": "escalated"}).text
    assert escalated.count('<li class="alert ') == 1 and "esc-1" in escalated
    assert '<span class="state">escalated</span>' in escalated
    assert "esc-1" not in client.get("/worklist", params={"status": "open"}).text
    assert shown("snoozed") and shown("snoozed") != shown("escalated")
