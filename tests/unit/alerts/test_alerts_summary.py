"""The words a clinician reads: values, limits, grade, red flags and what to do."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ruleset import load_config
from tests.builders.findings import hypercalcemia, rising_alp, rising_calcium
from workers.alerts.reconcile import episode_finding
from workers.alerts.summary import finding_facts, recommended_actions
from workers.rules.model import FindingCode, Priority


@pytest.mark.parametrize(
    ("code", "priority", "expected"),
    [
        ("suspected-mscc", "stat", "contact the MSCC coordinator immediately"),
        (
            "new-back-pain",
            "urgent",
            "urgent oncology review; consider whole-spine MRI within 1 week",
        ),
        ("hypercalcemia", "stat", "same-day medical assessment"),
        ("hypercalcemia", "asap", "oncology review as soon as possible"),
        ("hypercalcemia", "urgent", "urgent oncology review; repeat calcium"),
        ("rising-calcium", "routine", "next routine opportunity"),
        ("rising-alp", "routine", "repeat ALP with GGT"),
        ("rising-alp", "urgent", "consider imaging for bone metastases"),
        ("rising-alp", "stat", "consider imaging for bone metastases"),
        ("hypercalcemia", "routine", "urgent oncology review; repeat calcium"),
    ],
)
def test_each_finding_has_its_recommended_action(
    code: FindingCode, priority: Priority, expected: str
) -> None:
    assert expected in load_config().recommended_action(code, priority)


def test_a_combination_leads_with_the_raised_priority() -> None:
    findings = [episode_finding(rising_calcium()), episode_finding(rising_alp())]
    actions = recommended_actions(findings, "urgent", load_config())
    assert actions[0].startswith("oncology review at urgent priority")
    assert len(actions) == 3
    assert (
        len(recommended_actions(findings, "routine", load_config())) == 2
    )  # no combination: no lead line


def test_facts_give_value_limit_baseline_grade_and_supporting_records() -> None:
    facts = finding_facts(hypercalcemia(value=12.75, grade=3))
    assert facts == (
        "Value 12.75 mg/dL (upper limit 10.5 mg/dL; baseline 9.6 mg/dL, 1.33 × baseline); "
        "CTCAE v5 grade 3; supporting records: albumin 3.9 g/dL on 2026-11-02 "
        "[Observation/alb1]."
    )


def test_facts_say_when_there_is_no_baseline_and_keep_the_comparator() -> None:
    finding = replace(rising_alp(value=500.0), baseline=None, comparator=">")
    assert finding_facts(finding) == (
        "Value >500 U/L (upper limit 147 U/L; no baseline in the previous year); "
        "reported with the comparator '>'."
    )
