"""The R4 shapes of topic notifications (Backport IG), built from plain values, per content
level and notification type; all pass the R4 validator."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from service.subscriptions.channel import Content
from service.subscriptions.payload import Change
from service.subscriptions.topic_payload import Event, notification_bundle
from service.subscriptions.topic_subscription import (
    FILTER_CRITERIA_URL,
    HEARTBEAT_PERIOD_URL,
    parse_topic_subscription,
)
from tests.conftest import R4Validator

TOPIC = "https://fhir-alerts.example.org/fhir/SubscriptionTopic/alert-opened"
CR = {"resourceType": "CommunicationRequest", "id": "cr-1", "status": "active"}


def _event(number: int) -> Event:
    change = Change(
        "CommunicationRequest", "cr-1", 2, "2026-11-30T01:00:00.000Z", False, orjson.dumps(CR)
    )
    return Event(number, "2026-11-30T01:00:00.000Z", change)


def _bundle(content: Content, kind: str, events: list[Event], base: str | None = None) -> Any:
    built = notification_bundle(
        bundle_id="b7a3c9e2-1f4d-4c8a-9e6b-2d5f7a1c3e90",
        timestamp="2026-11-30T01:00:01.000Z",
        subscription_id="sub-1",
        topic_url=TOPIC,
        status="active",
        kind=kind,
        events_since_start=max((e.number for e in events), default=4),
        events=events,
        content=content,
        fhir_base=base,
    )
    return orjson.loads(orjson.dumps(built))


def _names(bundle: Any) -> list[str]:
    return [p["name"] for p in bundle["entry"][0]["resource"]["parameter"]]


@pytest.mark.parametrize("content", list(Content))
def test_event_notification_shapes(content: Content, r4_validate: R4Validator) -> None:
    bundle = _bundle(content, "event-notification", [_event(5)])
    status = bundle["entry"][0]
    assert bundle["type"] == "history"
    assert status["resource"]["resourceType"] == "Parameters"
    assert status["request"] == {"method": "GET", "url": "Subscription/sub-1/$status"}
    [event] = [p for p in status["resource"]["parameter"] if p["name"] == "notification-event"]
    parts = {p["name"]: p for p in event["part"]}
    assert parts["event-number"]["valueString"] == "5"
    if content is Content.EMPTY:
        assert len(bundle["entry"]) == 1 and "focus" not in parts and "topic" not in _names(bundle)
    else:
        assert parts["focus"]["valueReference"] == {"reference": "CommunicationRequest/cr-1"}
        [focus] = bundle["entry"][1:]
        assert focus["response"]["location"] == "CommunicationRequest/cr-1/_history/2"
        assert ("resource" in focus) == (content is Content.FULL_RESOURCE)
        assert "topic" in _names(bundle)
    r4_validate([bundle])


def test_handshake_and_heartbeat_and_retries_are_identical(r4_validate: R4Validator) -> None:
    handshake = _bundle(Content.ID_ONLY, "handshake", [])
    beat = _bundle(Content.FULL_RESOURCE, "heartbeat", [], base="https://x.example/fhir")
    assert _names(handshake) == [
        "subscription",
        "topic",
        "status",
        "type",
        "events-since-subscription-start",
    ]
    assert len(beat["entry"]) == 1
    assert _bundle(Content.ID_ONLY, "handshake", []) == handshake  # same bytes on a retry
    with_base = _bundle(
        Content.ID_ONLY, "event-notification", [_event(1)], "https://x.example/fhir"
    )
    assert with_base["entry"][1]["fullUrl"] == "https://x.example/fhir/CommunicationRequest/cr-1"
    r4_validate([handshake, beat, with_base])


def test_parse_topic_subscription() -> None:
    body = {
        "criteria": TOPIC,
        "_criteria": {
            "extension": [
                {
                    "url": FILTER_CRITERIA_URL,
                    "valueString": "CommunicationRequest?patient=Patient/p1",
                },
                {"url": FILTER_CRITERIA_URL, "valueString": "priority=stat,asap"},
            ]
        },
        "channel": {"extension": [{"url": HEARTBEAT_PERIOD_URL, "valueUnsignedInt": 60}]},
    }
    parsed, issues = parse_topic_subscription(body)
    assert issues == [] and parsed is not None
    assert (parsed.topic, parsed.heartbeat_seconds, parsed.timeout_seconds) == (
        "alert-opened",
        60,
        None,
    )
    assert len(parsed.filters) == 2 and parsed.url == TOPIC
    body["channel"] = {"extension": [{"url": HEARTBEAT_PERIOD_URL, "valueUnsignedInt": "60"}]}
    parsed, issues = parse_topic_subscription(body)
    assert parsed is None and "backport-heartbeat-period" in issues[0].diagnostics
