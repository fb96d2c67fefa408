"""The triage row's pure parts (issue 13): MRN, age and sex, the acknowledgement deadline and
its words, the recipient, escalation, the filters, and the charts' labelled scales."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import workers.escalation as sweep
from contract import ESCALATION_URL, SNOOZE_UNTIL_URL
from contract.deadlines import deadline_of
from service.ack_deadlines import DEFAULT_ACK_DEADLINES, parse_ack_deadlines
from service.web import triage
from service.web.trend import Point, Series, chart, nice_ticks
from service.web.worklist import Filters

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
MR = {"coding": [{"system": triage.MR_SYSTEM, "code": "MR"}]}


def test_mrn_is_the_identifier_typed_mr_else_the_first() -> None:
    patient = {
        "identifier": [
            {"system": "urn:ins", "value": "INS-1"},
            {"type": MR, "value": "MRN-7"},
        ]
    }
    assert triage.mrn(patient) == "MRN-7"
    assert triage.mrn({"identifier": [{"value": ""}, {"value": "A-1"}, {"value": "B"}]}) == "A-1"
    assert triage.mrn({"identifier": "garbage"}) is None
    assert triage.mrn({}) is None and triage.mrn(None) is None


@pytest.mark.parametrize(
    ("birth", "years"),
    [
        ("1960-03-10", 66),  # birthday today
        ("1960-03-11", 65),  # tomorrow
        ("1960-03", 66),
        ("1960", 66),
        ("2027-01-01", None),  # in the future
        ("1960-02-30", None),  # no such day
        ("", None),
        (19600310, None),
    ],
)
def test_age_in_whole_years_at_now(birth: object, years: int | None) -> None:
    assert triage.age_years(birth, NOW) == years


def test_age_and_sex_words() -> None:
    assert triage.age_sex({"birthDate": "1960-03-11", "gender": "female"}, NOW) == "65 y F"
    assert triage.age_sex({"gender": "male"}, NOW) == "M"
    assert triage.age_sex({"birthDate": "1980"}, NOW) == "46 y"
    assert triage.age_sex(None, NOW) == ""


def _request(**fields: object) -> dict[str, object]:
    return {"priority": "urgent", "authoredOn": "2026-03-10T08:00:00Z", **fields}


def test_deadline_is_the_sweeps_deadline() -> None:
    """The page's deadline is the one the sweep escalates at: one rule, `contract.deadlines`."""
    assert sweep.deadline_of is deadline_of
    deadlines = parse_ack_deadlines("stat=5m,urgent=2h")
    cases = [
        _request(),
        _request(priority="stat"),
        _request(priority="routine", authoredOn="2026-03-10T08:00:00+02:00"),
        _request(extension=[{"url": SNOOZE_UNTIL_URL, "valueDateTime": "2026-03-10T11:00:00Z"}]),
        _request(extension=[{"url": SNOOZE_UNTIL_URL, "valueDateTime": "2026-03-09T11:00:00Z"}]),
        _request(authoredOn="2026-03-10"),  # a date alone is no clock
        _request(priority="whenever"),
        {},
    ]
    for request in cases:
        assert triage.ack_deadline(request, deadlines) == deadline_of(request, deadlines), request
    assert triage.ack_deadline(_request(), DEFAULT_ACK_DEADLINES) == datetime(
        2026, 3, 10, 12, 0, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("minutes", "words", "overdue"),
    [
        (30, "30 min left", False),
        (0.2, "1 min left", False),
        (65, "1 h 05 min left", False),
        (181, "3 h left", False),
        (3 * 24 * 60, "3 days left", False),
        (0, "overdue 1 min", True),
        (-20, "overdue 20 min", True),
        (-600, "overdue 10 h", True),
    ],
)
def test_deadline_words(minutes: float, words: str, overdue: bool) -> None:
    assert triage.deadline_text(NOW + timedelta(minutes=minutes), NOW) == (words, overdue)
    assert triage.deadline_text(None, NOW) == ("", False)


def test_recipient_and_escalation() -> None:
    request = {
        "recipient": [
            {"reference": "PractitionerRole/oncall", "display": "On-call oncologist"},
            {"reference": "CareTeam/oncology"},
            "junk",
        ]
    }
    assert triage.recipient_text(request) == "On-call oncologist, CareTeam/oncology"
    flag = {
        "extension": [
            {
                "url": ESCALATION_URL,
                "extension": [
                    {"url": "request", "valueReference": {"reference": "CommunicationRequest/a"}}
                ],
            }
        ]
    }
    assert triage.escalated(flag, "a") and not triage.escalated(flag, "b")
    assert not triage.escalated({}, "a")


def test_filters_read_from_the_query_string_ignore_unknown_values() -> None:
    assert Filters.of("stat", "snoozed", "  ada   love ") == Filters("stat", "snoozed", "ada love")
    assert Filters.of("soon", "lost", None) == Filters()
    assert not Filters().active and Filters(q="x").active


def test_axis_ticks_are_round_values_inside_the_range() -> None:
    assert nice_ticks(8.1, 12.3, 4) == (9.0, 10.0, 11.0, 12.0)
    assert nice_ticks(0, 330, 4) == (0.0, 100.0, 200.0, 300.0)
    assert nice_ticks(5, 5) == (5,)


def test_chart_has_labelled_scales_and_a_single_result_is_a_value_with_its_limit() -> None:
    when = datetime(2026, 1, 5, tzinfo=UTC)
    two = Series(
        "Calcium", "mg/dL", (Point(when, 9.6), Point(when + timedelta(days=30), 11.6)), 10.5
    )
    drawn = chart(two)
    assert [t.label for t in drawn.y_ticks] == ["9.5", "10.0", "10.5", "11.0", "11.5"]
    ys = [t.y for t in drawn.y_ticks]
    assert ys == sorted(ys, reverse=True)  # higher values higher up
    assert all(drawn.plot_bottom >= y >= 10 for y in ys)
    one = chart(Series("ALP", "U/L", (Point(when, 300.0),), 147.0))
    assert one.single_value == "300 U/L" and one.limit_text == "147 U/L"
    assert one.dots[0].high
