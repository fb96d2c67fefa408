"""Overall priority and the combination rule (§5)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.builders.rules import (
    alp,
    back_pain,
    breast_cancer,
    calcium,
    codes,
    ionized,
    neuro,
    run,
)
from workers.rules import load_config
from workers.rules.model import Evidence, Finding, FindingCode, Priority
from workers.rules.priority import overall_priority

CONFIG = load_config()
WHEN = datetime(2026, 11, 1, tzinfo=UTC)


def _finding(code: FindingCode, priority: Priority) -> Finding:
    evidence = Evidence(reference=f"Observation/{code}", clinical_date=WHEN, kind="X", display="x")
    return Finding(code=code, priority=priority, date=WHEN, evidence=(evidence,), reason="r")


def test_combination_groups_are_spelled_out_in_the_rule_set() -> None:
    assert dict(CONFIG.combination_groups) == {
        "back pain": frozenset({"new-back-pain"}),
        "calcium": frozenset({"hypercalcemia", "rising-calcium"}),
        "ALP": frozenset({"rising-alp"}),
    }
    assert CONFIG.combination_min_groups == 2 and CONFIG.combination_ceiling == "asap"


@pytest.mark.parametrize(
    ("findings", "expected"),
    [
        ([], None),
        ([("rising-alp", "routine")], "routine"),
        ([("new-back-pain", "urgent")], "urgent"),
        ([("suspected-mscc", "stat")], "stat"),
        # two groups: one step up
        ([("rising-calcium", "routine"), ("rising-alp", "routine")], "urgent"),
        ([("new-back-pain", "urgent"), ("rising-alp", "routine")], "asap"),
        ([("new-back-pain", "urgent"), ("rising-calcium", "routine")], "asap"),
        ([("new-back-pain", "urgent"), ("hypercalcemia", "urgent")], "asap"),
        (
            [("new-back-pain", "urgent"), ("hypercalcemia", "urgent"), ("rising-alp", "urgent")],
            "asap",
        ),
        # never to stat by combination alone
        ([("new-back-pain", "urgent"), ("hypercalcemia", "asap")], "asap"),
        (
            [("hypercalcemia", "asap"), ("rising-alp", "urgent"), ("new-back-pain", "urgent")],
            "asap",
        ),
        # stat from a finding stays stat
        ([("hypercalcemia", "stat"), ("new-back-pain", "urgent")], "stat"),
        (
            [("suspected-mscc", "stat"), ("rising-alp", "routine"), ("new-back-pain", "urgent")],
            "stat",
        ),
        # one group only: no combination (two calcium findings are one group)
        ([("hypercalcemia", "urgent"), ("rising-calcium", "routine")], "urgent"),
        # suspected-mscc belongs to no group
        ([("suspected-mscc", "stat"), ("rising-alp", "routine")], "stat"),
    ],
)
def test_overall_priority(
    findings: list[tuple[FindingCode, Priority]], expected: str | None
) -> None:
    priority, reason = overall_priority([_finding(c, p) for c, p in findings], CONFIG)
    assert priority == expected
    assert reason


def test_reasons_say_how_the_priority_was_reached() -> None:
    _, raised = overall_priority(
        [_finding("new-back-pain", "urgent"), _finding("rising-alp", "routine")], CONFIG
    )
    assert raised == (
        "Highest finding priority: urgent (new-back-pain). Back pain and ALP findings are present"
        " together: raised one step to asap (combination rule)."
    )
    _, capped = overall_priority(
        [_finding("new-back-pain", "urgent"), _finding("hypercalcemia", "asap")], CONFIG
    )
    assert "at most to asap: it stays asap" in capped
    _, single = overall_priority([_finding("rising-alp", "routine")], CONFIG)
    assert single == "Highest finding priority: routine (rising-alp)."


def test_combination_end_to_end() -> None:
    a = run(breast_cancer(), back_pain("bp", 2), alp("a", 200))
    assert codes(a) == ["new-back-pain", "rising-alp"] and a.priority == "asap"
    b = run(breast_cancer(), calcium("b", 9.0, days=100), calcium("ca", 10.3), alp("a", 200))
    assert codes(b) == ["rising-alp", "rising-calcium"] and b.priority == "urgent"
    c = run(breast_cancer(), back_pain("bp", 2), calcium("ca", 12.0))  # grade 2: asap
    assert c.priority == "asap"
    d = run(breast_cancer(), back_pain("bp", 2), ionized("i", 1.7), alp("a", 200))  # grade 3
    assert d.priority == "stat"
    e = run(breast_cancer(), neuro("n", 2), alp("a", 200))
    assert e.priority == "stat"


def test_findings_are_sorted_by_code() -> None:
    a = run(breast_cancer(), neuro("n", 1), back_pain("bp", 1), calcium("ca", 12.0), alp("a", 300))
    assert (
        codes(a)
        == sorted(codes(a))
        == [
            "hypercalcemia",
            "new-back-pain",
            "rising-alp",
            "suspected-mscc",
        ]
    )
