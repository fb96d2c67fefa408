"""Consumed evidence (§6): history for every rule, a trigger for none."""

from __future__ import annotations

from tests.builders.rules import (
    albumin,
    alp,
    back_pain,
    breast_cancer,
    calcium,
    codes,
    finding,
    flag_codes,
    ggt,
    neuro,
    pain_score,
    refs,
    run,
    weight_loss,
)


def test_consumed_back_pain_plus_new_back_pain_fires_with_only_the_new_record() -> None:
    records = [breast_cancer(), back_pain("old", 10), back_pain("new", 0)]
    found = finding(run(*records, consumed={"Condition/old"}), "new-back-pain")
    assert refs(found) == ["Condition/new"]


def test_consumed_back_pain_alone_does_not_fire_again() -> None:
    a = run(breast_cancer(), back_pain("bp", 10), consumed={"Condition/bp"})
    assert a.findings == () and a.priority is None


def test_consumed_back_pain_still_makes_later_pain_not_new() -> None:
    a = run(breast_cancer(), back_pain("old", 100), back_pain("new", 1), consumed={"Condition/old"})
    assert a.findings == ()


def test_consumed_calcium_does_not_fire_hypercalcemia_again() -> None:
    assert run(breast_cancer(), calcium("ca", 12.0), consumed={"Observation/ca"}).findings == ()


def test_a_consumed_latest_value_is_still_the_latest() -> None:
    # The older value is unconsumed but is no longer the latest: nothing fires.
    a = run(
        breast_cancer(),
        calcium("older", 12.5, days=3),
        calcium("ca", 12.0, days=1),
        consumed={"Observation/ca"},
    )
    assert a.findings == ()


def test_new_calcium_after_a_consumed_one_fires_with_only_the_new_one() -> None:
    a = run(
        breast_cancer(),
        calcium("ca", 12.0, days=5),
        calcium("new", 11.8),
        consumed={"Observation/ca"},
    )
    assert refs(finding(a, "hypercalcemia")) == ["Observation/new"]


def test_consumed_values_still_make_baselines_and_corrections() -> None:
    a = run(
        breast_cancer(),
        calcium("b", 9.0, days=100),
        albumin("alb", 5.0, days=1),
        calcium("ca", 10.9),  # corrected with the consumed albumin: 10.1
        consumed={"Observation/b", "Observation/alb"},
    )
    found = finding(a, "rising-calcium")
    assert found.value == 10.1 and found.baseline == 9.0
    assert refs(found) == ["Observation/ca"]
    assert [e.reference for e in found.supporting] == ["Observation/b", "Observation/alb"]


def test_consumed_alp_baseline_still_counts() -> None:
    a = run(breast_cancer(), alp("b", 160, days=100), alp("a", 190), consumed={"Observation/b"})
    assert a.findings == ()  # 190 < 1.25 × 160


def test_consumed_neuro_deficit_does_not_fire_mscc_again() -> None:
    assert run(breast_cancer(), neuro("n", 2), consumed={"Condition/n"}).findings == ()
    a = run(breast_cancer(), neuro("n", 2), neuro("n2", 0), consumed={"Condition/n"})
    assert refs(finding(a, "suspected-mscc")) == ["Condition/n2"]


def test_consumed_breast_cancer_still_makes_eligible_and_dates_history() -> None:
    a = run(breast_cancer(onset="2026-10-20"), back_pain("bp", 1), consumed={"Condition/bc"})
    assert a.eligible and codes(a) == ["new-back-pain"]
    b = run(breast_cancer(onset="2026-10-30"), back_pain("bp", 5), consumed={"Condition/bc"})
    assert b.findings == ()


def test_consumed_records_raise_no_red_flag() -> None:
    a = run(
        breast_cancer(),
        calcium("ca", 10.8),
        weight_loss("w", 2),
        back_pain("hs", 3, "M54.6", "http://hl7.org/fhir/sid/icd-10-cm"),
        pain_score("p1", 1, 10),
        pain_score("p2", 6, 1),
        consumed={"Condition/w", "Condition/hs", "Observation/p2"},
    )
    assert codes(a) == ["hypercalcemia"] and flag_codes(a) == []


def test_consumed_earlier_pain_score_is_history_for_progressive_pain() -> None:
    a = run(
        breast_cancer(),
        calcium("ca", 10.8),
        pain_score("p1", 1, 10),
        pain_score("p2", 6, 1),
        consumed={"Observation/p1"},
    )
    assert flag_codes(a) == ["progressive-pain"]
    assert [e.reference for e in a.red_flags[0].evidence] == ["Observation/p2"]


def test_consumed_ggt_is_no_red_flag() -> None:
    a = run(breast_cancer(), alp("a", 300), ggt("g", 90, high=55), consumed={"Observation/g"})
    assert codes(a) == ["rising-alp"] and flag_codes(a) == []


def test_evidence_refs_only_hold_unconsumed_triggers() -> None:
    a = run(
        breast_cancer(),
        back_pain("old", 10),
        back_pain("new", 0),
        calcium("ca", 12.0),
        consumed={"Condition/old"},
    )
    assert a.evidence_refs == frozenset({"Condition/new", "Observation/ca"})
