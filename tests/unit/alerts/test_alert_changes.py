"""Snooze and dismiss as pure changes to a CommunicationRequest (service/alert_changes.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from contract import DISMISS_REASONS, SNOOZE_UNTIL_URL
from service.alert_changes import DISMISS_REASON_SYSTEM, dismiss_reason, dismissed, snoozed

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
BODY = {
    "resourceType": "CommunicationRequest",
    "id": "r1",
    "status": "active",
    "extension": [{"url": "http://example.org/other", "valueString": "kept"}],
    "note": [{"text": "earlier"}],
}


def test_snooze_sets_on_hold_with_reason_and_expiry_replacing_an_older_one() -> None:
    once = snoozed(BODY, who="nurse", now=NOW, until=NOW + timedelta(hours=1), reason=" a \n b ")
    assert once is not None
    twice = snoozed(once, who="charge", now=NOW, until=NOW + timedelta(hours=3), reason="later")
    assert twice is not None
    assert twice["status"] == "on-hold"
    assert twice["extension"] == [
        BODY["extension"][0],
        {"url": SNOOZE_UNTIL_URL, "valueDateTime": "2026-11-02T12:00:00Z"},
    ]
    assert [n["text"] for n in twice["note"]] == [
        "earlier",
        "Snoozed until 2026-11-02T10:00:00Z: a b",
        "Snoozed until 2026-11-02T12:00:00Z: later",
    ]
    assert BODY["status"] == "active"  # the input is not changed


@pytest.mark.parametrize(
    ("until", "reason", "message"),
    [
        (NOW, "x", "in the future"),
        (NOW - timedelta(minutes=1), "x", "in the future"),
        (NOW + timedelta(days=7, seconds=1), "x", "at most 7 days"),
        (NOW + timedelta(hours=1), "  ", "needs a reason"),
    ],
)
def test_snooze_refusals(until: datetime, reason: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        snoozed(BODY, who="nurse", now=NOW, until=until, reason=reason)


@pytest.mark.parametrize("status", ["completed", "revoked", "entered-in-error"])
def test_closed_requests_are_left_alone(status: str) -> None:
    body = dict(BODY, status=status)
    assert snoozed(body, who="n", now=NOW, until=NOW + timedelta(hours=1), reason="x") is None
    assert dismissed(body, who="n", now=NOW, reason="duplicate") is None


@pytest.mark.parametrize("reason", list(DISMISS_REASONS))
def test_every_dismiss_reason_is_coded(reason: str) -> None:
    text = "details" if reason == "other" else ""
    body = dismissed(BODY, who="nurse", now=NOW, reason=reason, text=text)
    assert body is not None
    assert body["status"] == "completed"
    assert body["statusReason"]["coding"] == [
        {"system": DISMISS_REASON_SYSTEM, "code": reason, "display": DISMISS_REASONS[reason]}  # type: ignore[index]
    ]
    assert dismiss_reason(body) == reason
    assert body["note"][-1]["authorString"] == "nurse"


def test_dismiss_refusals_and_reading_back() -> None:
    with pytest.raises(ValueError, match="unknown dismiss reason"):
        dismissed(BODY, who="n", now=NOW, reason="bored")
    with pytest.raises(ValueError, match="needs a text"):
        dismissed(BODY, who="n", now=NOW, reason="other", text=" ")
    assert dismiss_reason(BODY) is None
    assert (
        dismiss_reason({"statusReason": {"coding": [{"system": "x", "code": "duplicate"}]}}) is None
    )
    assert DISMISS_REASON_SYSTEM == "https://fhir-alerts.example.org/fhir/CodeSystem/dismiss-reason"
