"""Snooze expiry (`decide_wake`) and CareTeam routing (`careteam_members`): pure parts."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest

from contract import SNOOZE_UNTIL_URL
from tests.builders.findings import Patient, assess, back_pain, day
from workers.alerts import AlertSettings
from workers.alerts.snooze import decide_wake
from workers.routing import careteam_members

SETTINGS = AlertSettings()


def _snoozed(until: str = "2026-11-03T09:00:00Z") -> dict[str, Any]:
    patient = Patient()
    patient.evaluate(assess(back_pain()), day(0))
    episode = patient.open_episode
    assert episode is not None
    request = copy.deepcopy(patient.store.get(episode.communications[-1].reference))
    request["status"] = "on-hold"
    request["statusReason"] = {"text": "snoozed"}
    request["extension"].append({"url": SNOOZE_UNTIL_URL, "valueDateTime": until})
    return request


def test_a_snooze_ends_at_its_expiry_not_before() -> None:
    request = _snoozed()
    assert decide_wake(request, now=day(1) - timedelta(seconds=1), settings=SETTINGS) is None
    wake = decide_wake(request, now=day(1), settings=SETTINGS)
    assert wake is not None
    assert (wake.reference, wake.if_match) == (f"CommunicationRequest/{request['id']}", "1")
    assert wake.resource["status"] == "active"
    assert "statusReason" not in wake.resource
    assert "meta" not in wake.resource or "versionId" not in wake.resource["meta"]
    # The expiry stays: it is when the acknowledgement clock restarted.
    assert wake.resource["extension"][-1]["url"] == SNOOZE_UNTIL_URL
    assert "Snooze ended 2026-11-03T09:00:00Z" in wake.resource["note"][-1]["text"]


@pytest.mark.parametrize("status", ["active", "completed", "revoked"])
def test_only_on_hold_requests_wake(status: str) -> None:
    request = dict(_snoozed(), status=status)
    assert decide_wake(request, now=day(5), settings=SETTINGS) is None


def test_on_hold_without_a_usable_expiry_stays_on_hold() -> None:
    request = _snoozed(until="2026-11-03")  # a date alone is not a time
    assert decide_wake(request, now=day(30), settings=SETTINGS) is None
    request["extension"] = request["extension"][:-1]
    assert decide_wake(request, now=day(30), settings=SETTINGS) is None


def test_careteam_members_are_people_and_roles_in_order_without_repeats() -> None:
    team = {
        "resourceType": "CareTeam",
        "status": "active",
        "participant": [
            {"member": {"reference": "PractitionerRole/oncall"}},
            {"member": {"reference": "Organization/hospital"}},
            {"member": {"reference": "Practitioner/dr-a"}},
            {"member": {"reference": "PractitionerRole/oncall"}},
            {"member": {"display": "no reference"}},
            {"role": [{"text": "no member"}]},
            {"member": {"reference": "CareTeam/nested"}},
        ],
    }
    assert careteam_members(team) == ("PractitionerRole/oncall", "Practitioner/dr-a")
    assert careteam_members(dict(team, status="inactive")) == ()
    assert careteam_members({k: v for k, v in team.items() if k != "status"}) == (
        "PractitionerRole/oncall",
        "Practitioner/dr-a",
    )
    assert careteam_members(None) == ()
    assert careteam_members({"resourceType": "CareTeam"}) == ()
