"""Acknowledgement deadlines and escalation (issue 13): the pure decisions.

The alert is made by the production episode logic (`Patient.evaluate`), stored in the in-memory
store with versionIds, then judged by `decide_escalation` at controlled times.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest

from contract import (
    ESCALATION_IDENTIFIER_SYSTEM,
    ESCALATION_URL,
    PRIORITY_ORDER,
    SNOOZE_UNTIL_URL,
    Priority,
)
from service.ack_deadlines import DEFAULT_ACK_DEADLINES
from tests.builders.findings import Patient, assess, back_pain, day, mscc
from tests.conftest import R4Validator
from workers.alerts import AlertSettings
from workers.alerts.escalation import (
    EscalationPolicy,
    deadline_of,
    decide_acknowledged_through_escalation,
    decide_escalation,
    decide_escalation_withdrawal,
    escalation_id,
    escalation_key,
    is_escalation,
    next_priority,
    recorded_escalations,
)

SETTINGS = AlertSettings()
POLICY = EscalationPolicy(deadlines=DEFAULT_ACK_DEADLINES)
URGENT_DEADLINE = day(0) + timedelta(hours=4)  # back pain alone is urgent


def _opened(*findings: Any) -> tuple[Patient, dict[str, Any], dict[str, Any]]:
    patient = Patient()
    patient.evaluate(assess(*(findings or (back_pain(),))), day(0))
    episode = patient.open_episode
    assert episode is not None
    flag = patient.store.get(episode.flag_reference)
    request = patient.store.get(episode.communications[-1].reference)
    return patient, request, flag


def _decide(
    request: dict[str, Any],
    flag: dict[str, Any] | None,
    now: Any,
    *,
    stored: dict[str, Any] | None = None,
    policy: EscalationPolicy = POLICY,
) -> Any:
    return decide_escalation(
        request, flag, stored_escalation=stored, policy=policy, now=now, settings=SETTINGS
    )


def test_next_priority_is_one_step_up_and_never_beyond_stat() -> None:
    assert [next_priority(p) for p in PRIORITY_ORDER] == ["urgent", "asap", "stat", "stat"]


def test_the_deadline_is_authored_on_plus_the_priority_deadline() -> None:
    _patient, request, _flag = _opened()
    assert request["priority"] == "urgent"
    assert deadline_of(request, DEFAULT_ACK_DEADLINES) == URGENT_DEADLINE
    for priority in PRIORITY_ORDER:
        body = dict(request, priority=priority)
        assert deadline_of(body, DEFAULT_ACK_DEADLINES) == day(0) + DEFAULT_ACK_DEADLINES[priority]


@pytest.mark.parametrize(
    "change",
    [
        {"authoredOn": None},
        {"authoredOn": "2026-11-02"},  # a date alone: no clock to count from
        {"authoredOn": "2026-11-02T09:00:00"},  # no time zone
        {"authoredOn": "not a date"},
        {"priority": "whenever"},
    ],
)
def test_no_deadline_without_a_usable_authored_on_and_priority(change: dict[str, Any]) -> None:
    _patient, request, flag = _opened()
    body = {k: v for k, v in {**request, **change}.items() if v is not None}
    assert deadline_of(body, DEFAULT_ACK_DEADLINES) is None
    assert _decide(body, flag, day(30)) is None


def test_an_absent_priority_counts_as_routine() -> None:
    _patient, request, _flag = _opened()
    body = {k: v for k, v in request.items() if k != "priority"}
    assert deadline_of(body, DEFAULT_ACK_DEADLINES) == day(0) + timedelta(days=3)


def test_nothing_before_the_deadline_and_an_escalation_at_it() -> None:
    _patient, request, flag = _opened()
    assert _decide(request, flag, URGENT_DEADLINE - timedelta(seconds=1)) is None
    plan = _decide(request, flag, URGENT_DEADLINE)
    assert plan is not None
    assert plan.events == ("deadline-escalated",)
    assert plan.episode is None  # the episode state is not touched
    flag_write, create = plan.writes
    assert (flag_write.reference, flag_write.if_match) == (f"Flag/{flag['id']}", "1")
    assert create.is_create
    escalation = create.resource
    original = f"CommunicationRequest/{request['id']}"
    assert escalation["id"] == escalation_id(request["id"], URGENT_DEADLINE)
    assert escalation["identifier"] == [
        {
            "system": ESCALATION_IDENTIFIER_SYSTEM,
            "value": f"{request['id']}@2026-11-02T13:00:00Z",
        }
    ]
    assert escalation["basedOn"] == [{"reference": original}]
    assert [a["reference"] for a in escalation["about"]] == [original, f"Flag/{flag['id']}"]
    assert escalation["status"] == "active"
    assert escalation["priority"] == "asap"  # one step up from urgent
    assert escalation["subject"] == request["subject"]
    assert escalation["groupIdentifier"] == request["groupIdentifier"]
    assert escalation["recipient"] == [{"reference": "CareTeam/oncology"}]
    assert escalation["authoredOn"] == "2026-11-02T13:00:00Z"
    assert escalation["reasonCode"] == request["reasonCode"]
    text = escalation["payload"][0]["contentString"]
    assert original in text
    assert "4 hours deadline" in text
    assert "unacknowledged since 2026-11-02T13:00:00Z" in text
    assert "priority raised from urgent to asap" in text
    assert escalation["payload"][1]["contentString"].startswith("The missed alert said: ")
    assert is_escalation(escalation) and not is_escalation(request)


def test_the_flag_records_the_escalation_and_keeps_everything_else() -> None:
    _patient, request, flag = _opened()
    flag = copy.deepcopy(flag)
    flag["extension"].append({"url": "http://example.org/foreign", "valueString": "kept"})
    plan = _decide(request, flag, URGENT_DEADLINE + timedelta(minutes=5))
    assert plan is not None
    body = plan.writes[0].resource
    assert "versionId" not in body.get("meta", {})
    assert body["extension"][:-1] == flag["extension"]
    recorded = body["extension"][-1]
    assert recorded["url"] == ESCALATION_URL
    parts = {p["url"]: p for p in recorded["extension"]}
    assert (
        parts["request"]["valueReference"]["reference"] == f"CommunicationRequest/{request['id']}"
    )
    assert parts["deadline"]["valueDateTime"] == "2026-11-02T13:00:00Z"
    assert parts["date"]["valueDateTime"] == "2026-11-02T13:05:00Z"
    assert parts["to"]["valueCode"] == "asap"
    assert recorded_escalations(body) == [
        f"CommunicationRequest/{escalation_id(request['id'], URGENT_DEADLINE)}"
    ]
    assert {k: v for k, v in body.items() if k != "extension"} == {
        k: v for k, v in flag.items() if k not in ("extension", "meta")
    }


def test_stat_stays_stat() -> None:
    _patient, request, flag = _opened(mscc())
    assert request["priority"] == "stat"
    plan = _decide(request, flag, day(0) + timedelta(minutes=15))
    assert plan is not None
    escalation = plan.writes[1].resource
    assert escalation["priority"] == "stat"
    assert "15 minutes deadline" in escalation["payload"][0]["contentString"]


def test_an_existing_escalation_means_nothing_more_to_do() -> None:
    """Idempotent: a second sweep (any process, after a restart) finds the first one's work."""
    _patient, request, flag = _opened()
    plan = _decide(request, flag, URGENT_DEADLINE)
    assert plan is not None
    made = plan.writes[1].resource
    assert _decide(request, flag, URGENT_DEADLINE + timedelta(days=2), stored=made) is None
    # The same request and deadline always give the same id, so the lookup finds it.
    assert escalation_id(request["id"], URGENT_DEADLINE) == made["id"]
    assert escalation_key(request["id"], URGENT_DEADLINE) == made["identifier"][0]["value"]


@pytest.mark.parametrize("status", ["completed", "on-hold", "revoked", "entered-in-error"])
def test_acknowledged_snoozed_or_ended_requests_never_escalate(status: str) -> None:
    _patient, request, flag = _opened()
    body = dict(request, status=status)
    assert _decide(body, flag, URGENT_DEADLINE + timedelta(days=30)) is None


@pytest.mark.parametrize("flag_status", ["inactive", "entered-in-error"])
def test_a_closed_episode_never_escalates(flag_status: str) -> None:
    _patient, request, flag = _opened()
    assert _decide(request, dict(flag, status=flag_status), URGENT_DEADLINE) is None
    assert _decide(request, None, URGENT_DEADLINE) is None


def test_an_escalation_is_not_escalated_again() -> None:
    _patient, request, flag = _opened()
    plan = _decide(request, flag, URGENT_DEADLINE)
    assert plan is not None
    escalation = dict(plan.writes[1].resource, meta={"versionId": "1"})
    assert _decide(escalation, flag, URGENT_DEADLINE + timedelta(days=30)) is None


def test_configured_deadlines_and_recipients_are_used() -> None:
    _patient, request, flag = _opened()
    deadlines: dict[Priority, timedelta] = {**DEFAULT_ACK_DEADLINES, "urgent": timedelta(minutes=1)}
    policy = EscalationPolicy(deadlines, ("PractitionerRole/oncall", "Practitioner/dr-b"))
    assert _decide(request, flag, day(0) + timedelta(seconds=59), policy=policy) is None
    plan = _decide(request, flag, day(0) + timedelta(minutes=1), policy=policy)
    assert plan is not None
    escalation = plan.writes[1].resource
    assert escalation["recipient"] == [
        {"reference": "PractitionerRole/oncall"},
        {"reference": "Practitioner/dr-b"},
    ]
    assert "1 minute deadline" in escalation["payload"][0]["contentString"]


def test_a_woken_snooze_restarts_the_clock() -> None:
    _patient, request, flag = _opened()
    until = day(1)
    body = copy.deepcopy(request)
    body["extension"].append({"url": SNOOZE_UNTIL_URL, "valueDateTime": "2026-11-03T09:00:00Z"})
    assert deadline_of(body, DEFAULT_ACK_DEADLINES) == until + timedelta(hours=4)
    assert _decide(body, flag, until + timedelta(hours=3)) is None
    plan = _decide(body, flag, until + timedelta(hours=4))
    assert plan is not None
    # A different deadline is a different escalation.
    assert plan.writes[1].id == escalation_id(request["id"], until + timedelta(hours=4))
    assert plan.writes[1].id != escalation_id(request["id"], URGENT_DEADLINE)


def test_naive_now_is_refused() -> None:
    _patient, request, flag = _opened()
    with pytest.raises(ValueError, match="timezone-aware"):
        _decide(request, flag, URGENT_DEADLINE.replace(tzinfo=None))


def _escalated() -> tuple[dict[str, Any], dict[str, Any]]:
    _patient, request, flag = _opened()
    plan = _decide(request, flag, URGENT_DEADLINE)
    assert plan is not None
    return request, dict(plan.writes[1].resource, meta={"versionId": "1"})


def test_an_escalation_is_withdrawn_once_the_missed_request_is_acknowledged() -> None:
    request, escalation = _escalated()
    now = URGENT_DEADLINE + timedelta(minutes=30)
    assert decide_escalation_withdrawal(escalation, request, now=now, settings=SETTINGS) is None
    snoozed = dict(request, status="on-hold")
    assert decide_escalation_withdrawal(escalation, snoozed, now=now, settings=SETTINGS) is None
    done = dict(request, status="completed")
    write = decide_escalation_withdrawal(escalation, done, now=now, settings=SETTINGS)
    assert write is not None
    assert (write.reference, write.if_match) == (f"CommunicationRequest/{escalation['id']}", "1")
    assert write.resource["status"] == "revoked"
    assert "was acknowledged" in write.resource["statusReason"]["text"]
    assert write.resource["note"][-1]["time"] == "2026-11-02T13:30:00Z"
    gone = decide_escalation_withdrawal(escalation, None, now=now, settings=SETTINGS)
    assert gone is not None and "is gone" in gone.resource["note"][-1]["text"]


def test_a_closed_escalation_or_a_plain_alert_is_never_withdrawn() -> None:
    request, escalation = _escalated()
    done = dict(request, status="completed")
    now = URGENT_DEADLINE + timedelta(hours=1)
    for status in ("completed", "revoked"):
        closed = dict(escalation, status=status)
        assert decide_escalation_withdrawal(closed, done, now=now, settings=SETTINGS) is None
    assert decide_escalation_withdrawal(request, done, now=now, settings=SETTINGS) is None


def test_escalation_resources_are_valid_r4(r4_validate: R4Validator) -> None:
    _patient, request, flag = _opened()
    plan = _decide(request, flag, URGENT_DEADLINE)
    assert plan is not None
    _req, escalation = _escalated()
    withdrawn = decide_escalation_withdrawal(
        escalation, dict(request, status="completed"), now=URGENT_DEADLINE, settings=SETTINGS
    )
    assert withdrawn is not None
    r4_validate([w.resource for w in plan.writes] + [withdrawn.resource])


def test_acknowledging_the_escalation_completes_the_missed_request() -> None:
    request, escalation = _escalated()
    now = URGENT_DEADLINE + timedelta(hours=1)
    decide = decide_acknowledged_through_escalation
    assert decide(request, None, now=now, settings=SETTINGS) is None
    assert decide(request, escalation, now=now, settings=SETTINGS) is None  # still active
    done = dict(escalation, status="completed")
    write = decide(request, done, now=now, settings=SETTINGS)
    assert write is not None
    assert (write.reference, write.if_match) == (f"CommunicationRequest/{request['id']}", "1")
    assert write.resource["status"] == "completed"
    assert write.resource["note"][-1]["text"] == (
        f"Acknowledged through its escalation CommunicationRequest/{escalation['id']}."
    )
    assert decide(dict(request, status="completed"), done, now=now, settings=SETTINGS) is None
    assert decide(dict(request, status="revoked"), done, now=now, settings=SETTINGS) is None
