"""topic_event: which topic a new alert-request version is an event of, from (previous, new)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from contract import ESCALATION_IDENTIFIER_SYSTEM
from contract.topics import (
    ALERT_CLOSED,
    ALERT_ESCALATED,
    ALERT_OPENED,
    ALERT_PRIORITY_CHANGED,
    TOPIC_URLS,
    topic_of,
    topic_url,
)
from service.subscriptions.topic_events import topic_event

CR = "CommunicationRequest"
OPEN = ("active", "on-hold")
ENDED = ("completed", "revoked", "entered-in-error")
OTHER = ("draft", "unknown")
STATUSES = (*OPEN, *ENDED, *OTHER)


def request(
    status: str = "active",
    priority: str | None = "urgent",
    *,
    escalation: bool = False,
    replaces: bool = False,
) -> dict[str, Any]:
    body: dict[str, Any] = {"resourceType": CR, "id": "cr-1", "status": status}
    if priority is not None:
        body["priority"] = priority
    if escalation:
        body["identifier"] = [{"system": ESCALATION_IDENTIFIER_SYSTEM, "value": "cr-0@t"}]
    if replaces:
        body["replaces"] = [{"reference": "CommunicationRequest/cr-0"}]
    return body


@pytest.mark.parametrize(
    ("previous", "new", "expected"),
    [
        # created
        (None, request("active"), ALERT_OPENED),
        (None, request("on-hold"), ALERT_OPENED),
        (None, request("active", escalation=True), ALERT_ESCALATED),
        (None, request("active", replaces=True), ALERT_PRIORITY_CHANGED),
        (None, request("active", escalation=True, replaces=True), ALERT_ESCALATED),
        (None, request("completed"), None),
        (None, request("revoked"), None),
        (None, request("draft"), None),
        # reopened by a client
        (request("completed"), request("active"), ALERT_OPENED),
        (request("revoked"), request("active", escalation=True), ALERT_ESCALATED),
        (request("draft"), request("active"), ALERT_OPENED),
        # priority changes while open
        (request("active", "urgent"), request("active", "stat"), ALERT_PRIORITY_CHANGED),
        (request("active", "stat"), request("active", "urgent"), ALERT_PRIORITY_CHANGED),
        (request("on-hold", "urgent"), request("active", "asap"), ALERT_PRIORITY_CHANGED),
        (request("active", None), request("active", "urgent"), ALERT_PRIORITY_CHANGED),
        (request("active", None), request("active", "routine"), None),  # absent = routine
        # snooze, wake, notes: no event
        (request("active"), request("on-hold"), None),
        (request("on-hold"), request("active"), None),
        (request("active"), request("active"), None),
        (request("active", escalation=True), request("active", escalation=True), None),
        # closing
        (request("active"), request("completed"), ALERT_CLOSED),
        (request("on-hold"), request("completed"), ALERT_CLOSED),
        (request("active"), request("revoked"), ALERT_CLOSED),
        (request("active"), request("entered-in-error"), ALERT_CLOSED),
        (request("active", "urgent"), request("completed", "stat"), ALERT_CLOSED),
        (request("active", escalation=True), request("revoked", escalation=True), ALERT_CLOSED),
        # changes to ended requests
        (request("completed"), request("revoked"), None),
        (request("revoked"), request("revoked", "stat"), None),
        (request("active"), request("draft"), None),
        (request("active"), request("unknown"), None),
    ],
)
def test_topic_event(
    previous: dict[str, Any] | None, new: dict[str, Any], expected: str | None
) -> None:
    assert topic_event(previous, new, CR) == expected


PREVIOUS = [None, *(request(s, p) for s in STATUSES for p in ("urgent", "stat"))]
NEW = [
    request(s, p, escalation=e, replaces=r)
    for s, p, e, r in itertools.product(STATUSES, ("urgent", "stat"), (False, True), (False, True))
]


@pytest.mark.parametrize("previous", PREVIOUS)
def test_every_transition_is_judged_by_the_rules(previous: dict[str, Any] | None) -> None:
    """Every (previous, new) pair over statuses, priorities, escalation and replaces."""
    for new in NEW:
        got = topic_event(previous, new, CR)
        was_open = previous is not None and previous["status"] in OPEN
        if new["status"] in OPEN and not was_open:
            assert got in (ALERT_OPENED, ALERT_ESCALATED, ALERT_PRIORITY_CHANGED)
            assert (got == ALERT_ESCALATED) == ("identifier" in new)
            assert (got == ALERT_PRIORITY_CHANGED) == (
                "replaces" in new and "identifier" not in new
            )
        elif new["status"] in OPEN:
            assert previous is not None
            changed = previous["priority"] != new["priority"]
            assert got == (ALERT_PRIORITY_CHANGED if changed else None)
        elif was_open and new["status"] in ENDED:
            assert got == ALERT_CLOSED
        else:
            assert got is None
        assert topic_event(previous, new, "Flag") is None  # only alert requests have topics


def test_topic_canonicals_round_trip() -> None:
    assert len(TOPIC_URLS) == 4
    for url, code in TOPIC_URLS.items():
        assert topic_url(code) == url
        assert topic_of(url) == code
        assert topic_of(f"{url}|1.0") == code
        assert url.startswith("https://fhir-alerts.example.org/fhir/SubscriptionTopic/")
    assert topic_of("https://fhir-alerts.example.org/fhir/SubscriptionTopic/other") is None
