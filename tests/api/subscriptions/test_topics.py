"""Topic-based Subscriptions (Subscriptions R5 Backport IG, R4 shapes) end to end on the real
app and database with a real loopback receiver: handshake on activation, event numbering that
is gap-free per subscription across the alert's life (opened, escalated, priority changed,
closed), recovery through `$events` after the receiver was down, filters, payload levels."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from contract.topics import (
    ALERT_CLOSED,
    ALERT_ESCALATED,
    ALERT_OPENED,
    ALERT_PRIORITY_CHANGED,
    TOPIC_CODES,
    topic_url,
)
from service.auth import mint
from service.config import Settings
from service.store import resources as store
from service.store.db import session_factory, transaction
from service.store.resources import utcnow
from service.subscriptions import deliveries
from service.subscriptions.models import SubscriptionEvent
from tests.api.subscriptions.receiver import Receiver, wait_until
from tests.api.subscriptions.topic_helpers import (
    bundles,
    event_numbers,
    of_type,
    status_of,
    topic_subscription,
)
from tests.api.test_where_alerts_go import example
from tests.builders import back_pain_story
from tests.conftest import R4Validator, wait_idle
from workers import heartbeat
from workers.escalation import sweep

PROFILE_STATUS = (
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
    "backport-subscription-status-r4"
)


@pytest.fixture(autouse=True)
def _fast_delivery(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTS_DELIVERY_BASE_DELAY_SECONDS", "0.1")
    monkeypatch.setenv("ALERTS_DELIVERY_MAX_DELAY_SECONDS", "0.3")
    monkeypatch.setenv("ALERTS_DELIVERY_MAX_ATTEMPTS", "1000")
    monkeypatch.setenv("ALERTS_DELIVERY_TIMEOUT_SECONDS", "3")
    monkeypatch.setenv("ALERTS_DELIVERY_HEARTBEAT_CHECK_SECONDS", "0.2")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def create(client: TestClient, headers: dict[str, str], body: dict[str, Any]) -> str:
    r = client.post("/fhir/Subscription", json=body, headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "active"
    return str(r.json()["id"])


def requests_of(client: TestClient, headers: dict[str, str], pid: str) -> list[dict[str, Any]]:
    r = client.get(f"/fhir/CommunicationRequest?patient={pid}&_count=100", headers=headers)
    assert r.status_code == 200, r.text
    return [e["resource"] for e in r.json().get("entry", [])]


def open_alert(client: TestClient, headers: dict[str, str], pid: str) -> dict[str, Any]:
    r = client.post("/fhir", json=back_pain_story(pid), headers=headers)
    assert r.status_code == 200, r.text
    wait_idle(client, headers)
    (request,) = requests_of(client, headers, pid)
    return request


def patch_request(
    client: TestClient, headers: dict[str, str], rid: str, path: str, value: str
) -> None:
    r = client.patch(
        f"/fhir/CommunicationRequest/{rid}",
        json=[{"op": "replace", "path": path, "value": value}],
        headers={**headers, "Content-Type": "application/json-patch+json"},
    )
    assert r.status_code == 200, r.text
    wait_idle(client, headers)


def numbers(receiver: Receiver, sid: str) -> list[int]:
    """The event numbers a subscription's receiver has, each once (delivery is at least once
    and retries may overtake each other), in order."""
    return sorted(set(event_numbers(receiver, sid)))


def focus_of(bundle: dict[str, Any]) -> list[str]:
    return [e["focus"] for e in status_of(bundle)["notification-event"]]


def test_life_of_an_alert_numbered_gap_free_and_recovered_through_events(
    client: TestClient,
    headers: dict[str, str],
    settings: Settings,
    receiver: Receiver,
    r4_validate: R4Validator,
) -> None:
    opened = create(client, headers, topic_subscription(receiver.url, ALERT_OPENED))
    escalated = create(
        client, headers, topic_subscription(receiver.url, ALERT_ESCALATED, content="empty")
    )
    changed = create(client, headers, topic_subscription(receiver.url, ALERT_PRIORITY_CHANGED))
    closed = create(
        client, headers, topic_subscription(receiver.url, ALERT_CLOSED, content="id-only")
    )
    subs = (opened, escalated, changed, closed)

    # Handshake on activation: one each, before any event, eventsSinceSubscriptionStart 0.
    wait_until(lambda: all(bundles(receiver, s) for s in subs), what="handshakes")
    for sid in subs:
        [handshake] = bundles(receiver, sid)
        status = status_of(handshake)
        assert (status["type"], status["status"]) == ("handshake", "active")
        assert status["events-since-subscription-start"] == "0"
        assert status["subscription"] == f"Subscription/{sid}"
        assert handshake["type"] == "history" and len(handshake["entry"]) == 1

    # Opened: event 1 of `opened`, full-resource.
    first = open_alert(client, headers, "topic-1")
    wait_until(lambda: numbers(receiver, opened) == [1], what="alert-opened event 1")
    [note] = of_type(receiver, opened, "event-notification")
    assert focus_of(note) == [f"CommunicationRequest/{first['id']}"]
    assert note["entry"][1]["resource"]["id"] == first["id"]
    assert note["entry"][1]["resource"]["priority"] == "urgent"
    assert status_of(note)["topic"].endswith("/SubscriptionTopic/alert-opened")

    # A client raises the priority in place: event 1 of `changed`.
    patch_request(client, headers, first["id"], "/priority", "asap")
    wait_until(lambda: numbers(receiver, changed) == [1], what="priority-changed event")
    [note] = of_type(receiver, changed, "event-notification")
    assert note["entry"][1]["resource"]["priority"] == "asap"

    # Missed deadline: the sweep escalates, event 1 of `escalated` (empty: no focus at all).
    authored = datetime.fromisoformat(first["authoredOn"].replace("Z", "+00:00"))
    factory = session_factory(settings.resolved_database_url)
    outcome = sweep(factory, settings=settings, now=authored + timedelta(days=1))
    assert len(outcome.escalated) == 1
    wait_until(lambda: numbers(receiver, escalated) == [1], what="escalated event")
    [note] = of_type(receiver, escalated, "event-notification")
    assert len(note["entry"]) == 1 and "topic" not in status_of(note)
    assert "focus" not in status_of(note)["notification-event"][0]

    # Acknowledged: event 1 of `closed` (id-only: request/response, no resource); the sweep
    # then withdraws the moot escalation: event 2.
    patch_request(client, headers, first["id"], "/status", "completed")
    wait_until(lambda: numbers(receiver, closed) == [1], what="closed event")
    [note] = of_type(receiver, closed, "event-notification")
    assert "resource" not in note["entry"][1]
    assert note["entry"][1]["response"]["location"].startswith(
        f"CommunicationRequest/{first['id']}/_history/"
    )
    sweep(factory, settings=settings, now=authored + timedelta(days=1, minutes=1))
    wait_until(lambda: numbers(receiver, closed) == [1, 2], what="closed event 2")

    # Receiver down (answers 500): two more alerts open; nothing reaches it.
    receiver.fail_status, receiver.always_fail = 500, True
    second = open_alert(client, headers, "topic-2")
    third = open_alert(client, headers, "topic-3")
    wait_until(
        lambda: sum(1 for r in receiver.requests if r.answered == 500) >= 2,
        what="failed attempts",
    )
    assert numbers(receiver, opened) == [1]

    # $status tells the receiver it has missed events; $events hands them over.
    r = client.get(f"/fhir/Subscription/{opened}/$status", headers=headers)
    assert r.status_code == 200, r.text
    status_bundle = r.json()
    assert status_bundle["type"] == "searchset" and status_bundle["total"] == 1
    status = status_of(status_bundle)
    assert status["type"] == "query-status"
    assert status["events-since-subscription-start"] == "3"
    r = client.get(
        f"/fhir/Subscription/{opened}/$events", params={"eventsSinceNumber": "2"}, headers=headers
    )
    assert r.status_code == 200, r.text
    replay = r.json()
    status = status_of(replay)
    assert (replay["type"], status["type"]) == ("history", "query-event")
    assert status["events-since-subscription-start"] == "3"
    assert [e["event-number"] for e in status["notification-event"]] == ["2", "3"]
    assert focus_of(replay) == [
        f"CommunicationRequest/{second['id']}",
        f"CommunicationRequest/{third['id']}",
    ]
    assert [e["resource"]["id"] for e in replay["entry"][1:]] == [second["id"], third["id"]]

    # Back up: the retries bring 2 and 3; every subscription's numbers are gap-free.
    receiver.always_fail = False
    wait_until(lambda: numbers(receiver, opened) == [1, 2, 3], what="retries")
    for sid, count in ((opened, 3), (escalated, 1), (changed, 1), (closed, 2)):
        assert numbers(receiver, sid) == list(range(1, count + 1))

    everything = [b for sid in subs for b in bundles(receiver, sid)]
    assert all(b["entry"][0]["resource"]["meta"]["profile"] == [PROFILE_STATUS] for b in everything)
    r4_validate([*everything, status_bundle, replay])


def test_filters_by_patient_and_priority(
    client: TestClient, headers: dict[str, str], receiver: Receiver
) -> None:
    mine = create(
        client,
        headers,
        topic_subscription(
            receiver.url,
            ALERT_OPENED,
            content="id-only",
            filters=["CommunicationRequest?patient=Patient/filter-a", "priority=urgent,stat"],
        ),
    )
    stat_only = create(
        client,
        headers,
        topic_subscription(receiver.url, ALERT_OPENED, filters=["priority=stat"]),
    )
    everyone = create(client, headers, topic_subscription(receiver.url, ALERT_OPENED))
    a = open_alert(client, headers, "filter-a")
    b = open_alert(client, headers, "filter-b")
    wait_until(lambda: numbers(receiver, everyone) == [1, 2], what="unfiltered events")
    wait_until(lambda: numbers(receiver, mine) == [1], what="filtered event")
    time.sleep(0.5)  # anything that should not come would come now
    [note] = of_type(receiver, mine, "event-notification")
    assert focus_of(note) == [f"CommunicationRequest/{a['id']}"]
    assert numbers(receiver, mine) == [1]
    assert numbers(receiver, stat_only) == []  # both alerts are urgent
    focus = {f for n in of_type(receiver, everyone, "event-notification") for f in focus_of(n)}
    assert focus == {f"CommunicationRequest/{a['id']}", f"CommunicationRequest/{b['id']}"}
    # Numbers are per subscription: `mine` counted one event, `everyone` two.
    for sid, count in ((mine, "1"), (stat_only, "0"), (everyone, "2")):
        r = client.get(f"/fhir/Subscription/{sid}/$status", headers=headers)
        assert status_of(r.json())["events-since-subscription-start"] == count


def test_heartbeat_at_the_period_and_only_when_quiet(
    client: TestClient,
    headers: dict[str, str],
    settings: Settings,
    receiver: Receiver,
    r4_validate: R4Validator,
) -> None:
    beating = create(client, headers, topic_subscription(receiver.url, ALERT_CLOSED, heartbeat=1))
    silent = create(client, headers, topic_subscription(receiver.url, ALERT_CLOSED))
    started = time.monotonic()
    # The embedded checker (every 0.2 s here) sends one about every second after the handshake.
    wait_until(lambda: len(of_type(receiver, beating, "heartbeat")) >= 2, what="heartbeats")
    elapsed = time.monotonic() - started
    assert elapsed >= 1.5  # not faster than the period
    beats = of_type(receiver, beating, "heartbeat")
    for beat in beats:
        status = status_of(beat)
        assert (status["status"], status["events-since-subscription-start"]) == ("active", "0")
        assert status["notification-event"] == [] and len(beat["entry"]) == 1
    assert len({b["id"] for b in beats}) == len(beats)  # each its own notification
    assert of_type(receiver, silent, "heartbeat") == []  # no heartbeatPeriod: none
    r4_validate(beats[:1])

    # Driven directly with a clock: due again only once the period has passed since the last.
    factory = session_factory(settings.resolved_database_url)
    now = utcnow()
    client.app.state.heartbeat_checker.stop()  # type: ignore[attr-defined]
    wait_until(lambda: _settled(client, beating), what="heartbeats delivered")
    receiver.always_fail = True  # keeps the next heartbeat pending
    assert heartbeat.check(factory, now=now + timedelta(seconds=5)) == [beating]
    assert heartbeat.check(factory, now=now + timedelta(seconds=5.5)) == []  # within the period
    assert heartbeat.check(factory, now=now + timedelta(seconds=7)) == []  # the last is pending
    receiver.always_fail = False
    wait_until(lambda: _settled(client, beating), what="the driven heartbeat")
    assert heartbeat.check(factory, now=now + timedelta(seconds=7)) == [beating]


def _settled(client: TestClient, sid: str) -> bool:
    with transaction(client.app.state.session_factory) as session:  # type: ignore[attr-defined]
        return all(d.status == "success" for d in deliveries.log(session, sid))


def _token(settings: Settings, scope: str) -> dict[str, str]:
    token = mint(settings.signing_secret(), scope=scope)
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}


@pytest.mark.parametrize(
    ("change", "diagnostic"),
    [
        ({"criteria": "https://fhir-alerts.example.org/fhir/SubscriptionTopic/x"}, "unknown"),
        ({"criteria": "http://example.org/topics/patient-admission"}, "unknown"),
        ({"filters": ["CommunicationRequest?code=x"]}, "patient and priority"),
        ({"filters": ["Flag?patient=Patient/1"]}, "filters apply to CommunicationRequest"),
        ({"filters": ["priority:not=stat"]}, "patient and priority"),
        ({"filters": ["patient=Patient/1&status=active"]}, "patient and priority"),
        ({"filters": ["priority="]}, "has no value"),
        ({"heartbeat": 0}, "backport-heartbeat-period"),
    ],
)
def test_a_topic_subscription_that_cannot_be_served_is_a_422(
    client: TestClient, headers: dict[str, str], change: dict[str, Any], diagnostic: str
) -> None:
    body = topic_subscription(
        "http://127.0.0.1:9/hook",
        ALERT_OPENED,
        filters=change.get("filters", ()),
        heartbeat=change.get("heartbeat"),
    )
    if "criteria" in change:
        body["criteria"] = change["criteria"]
    r = client.post("/fhir/Subscription", json=body, headers=headers)
    assert r.status_code == 422, r.text
    assert diagnostic in r.text
    assert client.get("/fhir/Subscription", headers=headers).json().get("total", 0) == 0


def test_scopes_status_and_events_operations(
    client: TestClient, headers: dict[str, str], settings: Settings, receiver: Receiver
) -> None:
    body = topic_subscription(receiver.url, ALERT_OPENED)
    # The owner needs read scope on what the topic is about (a notification is a read).
    subscriptions_only = _token(settings, "system/Subscription.*")
    r = client.post("/fhir/Subscription", json=body, headers=subscriptions_only)
    assert r.status_code == 403, r.text
    assert "CommunicationRequest" in r.text
    sid = create(client, headers, body)
    plain = create(
        client,
        headers,
        {
            "resourceType": "Subscription",
            "status": "requested",
            "reason": "plain",
            "criteria": "CommunicationRequest?priority=stat",
            "channel": {"type": "rest-hook", "endpoint": receiver.url},
        },
    )
    open_alert(client, headers, "ops-1")
    wait_until(lambda: numbers(receiver, sid) == [1], what="event 1")

    # $status needs Subscription read; $events with content also CommunicationRequest read.
    r = client.get(
        f"/fhir/Subscription/{sid}/$status", headers=_token(settings, "system/Flag.read")
    )
    assert r.status_code == 403, r.text
    reader = _token(settings, "system/Subscription.read")
    assert client.get(f"/fhir/Subscription/{sid}/$status", headers=reader).status_code == 200
    r = client.get(f"/fhir/Subscription/{sid}/$events", headers=reader)
    assert r.status_code == 403, r.text
    r = client.get(f"/fhir/Subscription/{sid}/$events?content=empty", headers=reader)
    assert r.status_code == 200, r.text
    empty = r.json()
    assert len(empty["entry"]) == 1 and "topic" not in status_of(empty)
    assert [e["event-number"] for e in status_of(empty)["notification-event"]] == ["1"]

    # Ranges are inclusive; an empty range is an empty answer, not an error.
    r = client.get(
        f"/fhir/Subscription/{sid}/$events",
        params={"eventsSinceNumber": "1", "eventsUntilNumber": "1", "content": "id-only"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    assert "resource" not in r.json()["entry"][1]
    r = client.get(f"/fhir/Subscription/{sid}/$events?eventsSinceNumber=2", headers=headers)
    assert status_of(r.json())["notification-event"] == [] and len(r.json()["entry"]) == 1
    r = client.get(f"/fhir/Subscription/{sid}/$events?eventsSinceNumber=two", headers=headers)
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome"
    r = client.get(f"/fhir/Subscription/{sid}/$events?content=everything", headers=headers)
    assert r.status_code == 400

    # Unknown: 404 OperationOutcome; plain: 422; type level lists topic ones only.
    for op in ("$status", "$events"):
        r = client.get(f"/fhir/Subscription/nope/{op}", headers=headers)
        assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome"
        r = client.get(f"/fhir/Subscription/{plain}/{op}", headers=headers)
        assert r.status_code == 422 and r.json()["resourceType"] == "OperationOutcome"
    r = client.get("/fhir/Subscription/$status", headers=headers)
    assert r.status_code == 200, r.text
    found = [e["resource"] for e in r.json()["entry"]]
    assert [status_of({"entry": [{"resource": p}]})["subscription"] for p in found] == [
        f"Subscription/{sid}"
    ]
    r = client.get(f"/fhir/Subscription/$status?id={plain},{sid}&status=off", headers=headers)
    assert r.json()["total"] == 0
    r = client.get(f"/fhir/Subscription/$status?id={sid}&status=active", headers=headers)
    assert r.json()["total"] == 1


def test_error_state_holds_events_and_reactivation_handshakes(
    client: TestClient,
    headers: dict[str, str],
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALERTS_DELIVERY_MAX_ATTEMPTS", "2")
    receiver.always_fail = True
    body = topic_subscription(receiver.url, ALERT_OPENED)
    sid = create(client, headers, body)

    def status() -> str:
        return str(client.get(f"/fhir/Subscription/{sid}", headers=headers).json()["status"])

    wait_until(lambda: status() == "error", what="the handshake given up")
    open_alert(client, headers, "err-1")  # recorded and numbered while in error, held
    r = client.get(f"/fhir/Subscription/{sid}/$status", headers=headers)
    assert status_of(r.json())["status"] == "error"
    assert status_of(r.json())["events-since-subscription-start"] == "1"

    receiver.always_fail = False
    current = client.get(f"/fhir/Subscription/{sid}", headers=headers).json()
    current["status"] = "requested"
    r = client.put(f"/fhir/Subscription/{sid}", json=current, headers=headers)
    assert r.status_code == 200 and r.json()["status"] == "active", r.text
    wait_until(lambda: numbers(receiver, sid) == [1], what="the held event")
    wait_until(lambda: len(of_type(receiver, sid, "handshake")) == 2, what="handshakes")
    kinds = [d.kind for d in _log(client, sid)]
    assert kinds == ["handshake", "event", "handshake"]
    wait_until(lambda: _settled(client, sid), what="the log settled")


def _log(client: TestClient, sid: str) -> list[deliveries.DeliveryView]:
    with transaction(client.app.state.session_factory) as session:  # type: ignore[attr-defined]
        return deliveries.log(session, sid)


def test_capability_statement_advertises_topics_and_operations(
    client: TestClient, r4_validate: R4Validator
) -> None:
    statement = client.get("/fhir/metadata").json()
    [entry] = [r for r in statement["rest"][0]["resource"] if r["type"] == "Subscription"]
    canonical = (
        "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
        "capabilitystatement-subscriptiontopic-canonical"
    )
    assert [e["valueCanonical"] for e in entry["extension"] if e["url"] == canonical] == [
        topic_url(code) for code in TOPIC_CODES
    ]
    assert {o["name"]: o["definition"] for o in entry["operation"]} == {
        "status": "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/"
        "backport-subscription-status",
        "events": "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/"
        "backport-subscription-events",
    }
    assert entry["supportedProfile"] == [
        "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription"
    ]
    # The validator's R4 schema predates 4.0.1 (see test_emitted_resources_valid.py).
    r4_validate([{**statement, "fhirVersion": "4.0.0"}])


def test_concurrent_writers_never_share_or_skip_a_number(
    client: TestClient, headers: dict[str, str], settings: Settings
) -> None:
    """Six writers store alert requests at the same moment (each its own transaction, as the
    worker and the API do): each topic subscription numbers them 1..6, once each; its events
    and deliveries agree. On PostgreSQL this is the counter row's lock at work."""
    sids = [
        create(client, headers, topic_subscription("http://127.0.0.1:9/hook", ALERT_OPENED))
        for _ in range(2)
    ]
    client.app.state.relay.stop()  # type: ignore[attr-defined]  # keep the log as recorded
    factory = session_factory(settings.resolved_database_url)
    n = 6
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def write(i: int) -> None:
        barrier.wait()
        try:
            with transaction(factory) as session:
                store.save(
                    session,
                    resource_type="CommunicationRequest",
                    resource_id=f"race-{i}",
                    resource={
                        "resourceType": "CommunicationRequest",
                        "status": "active",
                        "priority": "urgent",
                        "subject": {"reference": f"Patient/race-{i}"},
                    },
                )
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with transaction(factory) as session:
        for sid in sids:
            events = session.scalars(
                select(SubscriptionEvent).where(SubscriptionEvent.subscription_id == sid)
            ).all()
            assert sorted(e.number for e in events) == list(range(1, n + 1))
            assert sorted(e.focus_id for e in events) == sorted(f"race-{i}" for i in range(n))
            numbered = {e.focus_id: e.number for e in events}
            log = [d for d in deliveries.log(session, sid) if d.kind == "event"]
            assert sorted(d.event_number or 0 for d in log) == list(range(1, n + 1))
            for d in log:
                focus = d.resource.split("/")[1]
                assert numbered[focus] == d.event_number


def test_readme_topic_example(
    client: TestClient, headers: dict[str, str], receiver: Receiver, r4_validate: R4Validator
) -> None:
    """README.md "Where alerts go", the topic-based example, posted as written (its endpoint
    swapped for the loopback receiver; the example's own host is never contacted)."""
    body = example("topic")
    assert body["channel"]["endpoint"] == "https://pager.example.org/fhir-alerts"
    body["channel"]["endpoint"] = receiver.url
    sid = create(client, headers, body)
    wait_until(lambda: len(of_type(receiver, sid, "handshake")) == 1, what="the handshake")
    open_alert(client, headers, "WT-3")
    other = open_alert(client, headers, "WT-4")  # another patient: filtered out
    wait_until(lambda: numbers(receiver, sid) == [1], what="the event")
    [got] = [r for r in receiver.accepted() if b"event-notification" in r.body]
    assert got.headers["authorization"] == "Bearer pager-token-123"
    note = orjson.loads(got.body)
    [focus] = focus_of(note)
    assert focus != f"CommunicationRequest/{other['id']}"
    assert note["entry"][1]["request"]["url"] == focus and "resource" not in note["entry"][1]
    r = client.get(f"/fhir/Subscription/{sid}/$events?eventsSinceNumber=1", headers=headers)
    assert focus_of(r.json()) == [focus]
    r4_validate([note, r.json()])
