"""Eligibility, known bone metastasis, new-back-pain and suspected-mscc (§1, §5)."""

from __future__ import annotations

import pytest

from tests.builders.rules import (
    ICD9,
    ICD10CM,
    SNOMED,
    alp,
    back_pain,
    back_pain_obs,
    breast_cancer,
    calcium,
    codes,
    condition,
    day_ago,
    finding,
    neuro,
    refs,
    run,
)

# -- eligibility ------------------------------------------------------------------------------


def test_not_eligible_gets_no_finding_even_with_alarming_data() -> None:
    a = run(back_pain("bp", 1), neuro("n", 1), calcium("ca", 14.0), alp("a", 900))
    assert a.eligible is False
    assert a.findings == () and a.red_flags == () and a.priority is None
    assert "Not eligible" in a.priority_reason


def test_breast_cancer_arriving_later_makes_the_stored_data_count() -> None:
    stored = [back_pain("bp", 1), calcium("ca", 12.0)]
    assert run(*stored).eligible is False
    a = run(*stored, breast_cancer())
    assert a.eligible and codes(a) == ["hypercalcemia", "new-back-pain"]


def test_assessment_records_patient_time_and_ruleset() -> None:
    a = run(breast_cancer())
    assert a.patient == "Patient/p1"
    assert a.ruleset_version == "bone-mets-v1.1"
    assert a.eligible and a.findings == () and a.priority is None


# -- known bone metastasis --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("system", "code"),
    [(SNOMED, "94222008"), (ICD10CM, "C79.51"), (ICD10CM, "C7952"), (ICD9, "198.5")],
)
def test_known_bone_metastasis_suppresses_back_pain_and_rises(system: str, code: str) -> None:
    a = run(
        breast_cancer(),
        condition("m", code, system, onset="2024-01-01"),
        back_pain("bp", 1),
        calcium("base", 9.0, days=100),
        calcium("ca", 10.2),  # rising-calcium without the metastasis
        alp("a", 200),  # rising-alp without the metastasis
    )
    assert a.known_bone_metastasis is True
    assert a.findings == ()


def test_known_bone_metastasis_keeps_mscc_and_hypercalcemia_from_grade_2() -> None:
    mets = condition("m", "C79.51", onset="2024-01-01")
    grade1 = run(breast_cancer(), mets, calcium("ca", 11.0))
    assert grade1.findings == ()
    grade2 = run(breast_cancer(), mets, calcium("ca", 12.0), neuro("n", 3))
    assert codes(grade2) == ["hypercalcemia", "suspected-mscc"]
    assert finding(grade2, "hypercalcemia").grade == 2
    assert "Known bone metastasis" in grade2.priority_reason


def test_refuted_bone_metastasis_is_not_known() -> None:
    a = run(
        breast_cancer(),
        condition("m", "C79.51", onset="2024-01-01", verification="refuted"),
        back_pain("bp", 1),
    )
    assert a.known_bone_metastasis is False and codes(a) == ["new-back-pain"]


# -- new-back-pain ----------------------------------------------------------------------------


def test_new_back_pain_is_urgent_with_its_record_as_evidence() -> None:
    a = run(breast_cancer(), back_pain("bp", 3))
    found = finding(a, "new-back-pain")
    assert found.priority == "urgent" and a.priority == "urgent"
    assert refs(found) == ["Condition/bp"]
    assert found.evidence[0].kind == "BACK_PAIN"
    assert found.evidence[0].display == f"back pain recorded on {day_ago(3)}"
    assert found.date == found.evidence[0].clinical_date
    assert "2019-03-01" in found.reason and day_ago(3) in found.reason


@pytest.mark.parametrize(("days", "fires"), [(0, True), (30, True), (31, False)])
def test_back_pain_recent_window_edge(days: int, fires: bool) -> None:
    assert ("new-back-pain" in codes(run(breast_cancer(), back_pain("bp", days)))) is fires


def test_recent_window_counts_calendar_days() -> None:
    # A plain date 30 days back is recent although T is at noon (30.5 days later).
    assert codes(run(breast_cancer(), back_pain("bp", 30))) == ["new-back-pain"]


@pytest.mark.parametrize(
    ("gap", "new"),
    [(1, True), (30, True), (31, False), (200, False), (365, False), (366, True)],
)
def test_earlier_back_pain_31_to_365_days_before_makes_it_not_new(gap: int, new: bool) -> None:
    a = run(breast_cancer(), back_pain("bp", 5), back_pain("earlier", 5 + gap))
    assert ("new-back-pain" in codes(a)) is new


def test_each_recent_record_is_judged_on_its_own_history() -> None:
    # hist is 40 days before a and 58 before b: neither is new.
    assert (
        run(breast_cancer(), back_pain("hist", 60), back_pain("a", 20), back_pain("b", 2)).findings
        == ()
    )
    # hist is 30 days before a (a is new) and 53 before b (b is not): only a is evidence.
    a = run(breast_cancer(), back_pain("hist", 55), back_pain("a", 25), back_pain("b", 2))
    assert refs(finding(a, "new-back-pain")) == ["Condition/a"]
    # Two recent records without history: both are evidence, the finding dated by the newest.
    both = finding(run(breast_cancer(), back_pain("a", 20), back_pain("b", 2)), "new-back-pain")
    assert refs(both) == ["Condition/a", "Condition/b"]
    assert both.date == both.evidence[-1].clinical_date


def test_back_pain_before_the_first_breast_cancer_date_does_not_count() -> None:
    bc = breast_cancer(onset=day_ago(10))
    assert run(bc, back_pain("bp", 11)).findings == ()
    assert codes(run(bc, back_pain("bp", 10))) == ["new-back-pain"]  # same day counts
    # The first date is the earliest of several breast-cancer records.
    assert codes(run(bc, breast_cancer("bc0", onset="2015"), back_pain("bp", 11))) == [
        "new-back-pain"
    ]


def test_back_pain_as_observation_and_icd_codes_count() -> None:
    assert codes(run(breast_cancer(), back_pain_obs("o", 1))) == ["new-back-pain"]
    assert codes(run(breast_cancer(), back_pain("bp", 1, "M5450", ICD10CM))) == ["new-back-pain"]
    assert codes(run(breast_cancer(), back_pain("bp", 1, "724.2", ICD9))) == ["new-back-pain"]


def test_late_arriving_old_back_pain_makes_the_current_one_not_new() -> None:
    now = [breast_cancer(), back_pain("bp", 2)]
    assert codes(run(*now)) == ["new-back-pain"]
    assert run(*now, back_pain("old", 100)).findings == ()  # arrived today, dated 100 days ago


# -- suspected-mscc ---------------------------------------------------------------------------


@pytest.mark.parametrize(("days", "fires"), [(0, True), (14, True), (15, False)])
def test_mscc_window_edge(days: int, fires: bool) -> None:
    assert ("suspected-mscc" in codes(run(breast_cancer(), neuro("n", days)))) is fires


@pytest.mark.parametrize(
    ("code", "system"),
    [
        ("G95.20", ICD10CM),
        ("G83.4", ICD10CM),
        ("R32", ICD10CM),
        ("M54.16", ICD10CM),
        ("71286001", SNOMED),
        ("344.61", ICD9),
        ("78820", ICD9),
    ],
)
def test_mscc_is_stat_with_or_without_back_pain(code: str, system: str) -> None:
    alone = run(breast_cancer(), neuro("n", 2, code, system))
    assert finding(alone, "suspected-mscc").priority == "stat" and alone.priority == "stat"
    with_pain = run(breast_cancer(), neuro("n", 2, code, system), back_pain("bp", 2))
    assert codes(with_pain) == ["new-back-pain", "suspected-mscc"]
    assert with_pain.priority == "stat"


def test_mscc_evidence_lists_every_recent_deficit() -> None:
    a = run(breast_cancer(), neuro("n1", 1), neuro("n2", 14, "R20.2"), neuro("old", 40))
    found = finding(a, "suspected-mscc")
    assert refs(found) == ["Condition/n2", "Condition/n1"]  # oldest first
    assert found.date == found.evidence[-1].clinical_date
