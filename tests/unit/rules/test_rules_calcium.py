"""hypercalcemia and rising-calcium: limits, CTCAE grades, Payne, ionized, baselines (§5)."""

from __future__ import annotations

import pytest

from tests.builders.rules import (
    albumin,
    breast_cancer,
    calcium,
    codes,
    corrected_calcium,
    finding,
    ionized,
    refs,
    run,
)

# -- hypercalcemia: limit and grades ----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "grade", "priority"),
    [
        (10.51, 1, "urgent"),
        (11.5, 1, "urgent"),
        (11.51, 2, "asap"),
        (12.5, 2, "asap"),
        (12.51, 3, "stat"),
        (13.5, 3, "stat"),
        (13.51, 4, "stat"),
        (16.0, 4, "stat"),
    ],
)
def test_ctcae_grades_and_priorities(value: float, grade: int, priority: str) -> None:
    a = run(breast_cancer(), calcium("ca", value))
    found = finding(a, "hypercalcemia")
    assert (found.grade, found.priority, a.priority) == (grade, priority, priority)
    assert found.upper_limit == 10.5 and found.unit == "mg/dL"
    assert f"CTCAE grade {grade}" in found.reason


@pytest.mark.parametrize("value", [10.5, 10.49, 9.0])
def test_at_or_below_the_limit_is_not_hypercalcemia(value: float) -> None:
    assert "hypercalcemia" not in codes(run(breast_cancer(), calcium("ca", value)))


def test_default_limit_in_mmol_per_litre_is_2_62() -> None:
    # 2.62 mmol/L = 10.501 mg/dL: just above 10.5; 2.61 mmol/L = 10.461: below.
    assert codes(run(breast_cancer(), calcium("ca", 2.62, unit="mmol/L"))) == ["hypercalcemia"]
    assert run(breast_cancer(), calcium("ca", 2.61, unit="mmol/L")).findings == ()


@pytest.mark.parametrize(("days", "fires"), [(0, True), (30, True), (31, False)])
def test_latest_value_must_be_recent(days: int, fires: bool) -> None:
    assert bool(run(breast_cancer(), calcium("ca", 12.0, days=days)).findings) is fires


def test_only_the_latest_value_is_judged() -> None:
    a = run(breast_cancer(), calcium("high", 12.0, days=5), calcium("normal", 9.5, days=1))
    assert a.findings == ()
    a = run(breast_cancer(), calcium("normal", 9.5, days=5), calcium("high", 12.0, days=1))
    assert refs(finding(a, "hypercalcemia")) == ["Observation/high"]


def test_late_arriving_older_value_does_not_displace_the_latest() -> None:
    a = run(breast_cancer(), calcium("latest", 9.5, days=1), calcium("late", 13.0, days=3))
    assert a.findings == ()


def test_comparator_is_used_as_the_number_and_noted() -> None:
    a = run(breast_cancer(), calcium("ca", 14.0, comparator=">"))
    found = finding(a, "hypercalcemia")
    assert found.value == 14.0 and found.grade == 4
    assert found.comparator == ">" and found.evidence[0].comparator == ">"
    assert ">14 mg/dL" in found.evidence[0].display and "'>'" in found.reason


# -- reference range ---------------------------------------------------------------------------


def test_own_reference_range_high_replaces_the_default() -> None:
    a = run(breast_cancer(), calcium("ca", 10.3, high=10.2, high_unit="mg/dL"))
    found = finding(a, "hypercalcemia")
    assert found.upper_limit == 10.2 and found.grade == 1
    assert run(breast_cancer(), calcium("ca", 10.7, high=10.8, high_unit="mg/dL")).findings == ()


def test_reference_range_high_is_converted_to_the_judged_unit() -> None:
    a = run(breast_cancer(), calcium("ca", 10.3, high=2.55, high_unit="mmol/L"))
    assert finding(a, "hypercalcemia").upper_limit == pytest.approx(2.55 * 4.008)


def test_reference_range_high_without_unit_is_in_the_value_unit() -> None:
    a = run(breast_cancer(), calcium("ca", 2.6, unit="mmol/L", high=2.5))
    assert finding(a, "hypercalcemia").upper_limit == pytest.approx(2.5 * 4.008)


def test_unconvertible_reference_range_falls_back_to_the_default_with_a_note() -> None:
    a = run(breast_cancer(), calcium("ca", 10.6, high=5.2, high_unit="mEq/L"))
    assert finding(a, "hypercalcemia").upper_limit == 10.5
    assert a.notes == (
        "Observation/ca: referenceRange high unit mEq/L cannot be converted to mg/dL;"
        " default upper limit used",
    )


def test_reference_range_without_high_uses_the_default() -> None:
    resource = calcium("ca", 10.6)
    resource["referenceRange"] = [{"low": {"value": 8.5, "unit": "mg/dL"}}]
    assert finding(run(breast_cancer(), resource), "hypercalcemia").upper_limit == 10.5


# -- Payne correction --------------------------------------------------------------------------


@pytest.mark.parametrize(("albumin_days", "corrected"), [(2, True), (-2, True), (3, False)])
def test_payne_correction_only_with_an_albumin_within_two_days(
    albumin_days: int, corrected: bool
) -> None:
    # total 10.2 mg/dL with albumin 3.0 g/dL → 10.2 + 0.8 × (4.0 − 3.0) = 11.0 mg/dL.
    a = run(
        breast_cancer(), calcium("ca", 10.2, days=5), albumin("alb", 3.0, days=5 + albumin_days)
    )
    if corrected:
        found = finding(a, "hypercalcemia")
        assert found.value == pytest.approx(11.0)
        assert [e.reference for e in found.supporting] == ["Observation/alb"]
        assert "albumin-corrected to 11 mg/dL" in found.reason
    else:
        assert a.findings == ()


def test_payne_correction_can_lower_the_value() -> None:
    # 10.8 with albumin 4.5 → 10.8 − 0.4 = 10.4: not above the limit.
    assert run(breast_cancer(), calcium("ca", 10.8), albumin("alb", 4.5, days=1)).findings == ()


def test_albumin_in_grams_per_litre_is_converted() -> None:
    a = run(breast_cancer(), calcium("ca", 10.2), albumin("alb", 30, days=1, unit="g/L"))
    assert finding(a, "hypercalcemia").value == pytest.approx(11.0)


def test_the_nearest_albumin_is_used() -> None:
    a = run(
        breast_cancer(),
        calcium("ca", 10.2, days=5),
        albumin("far", 2.0, days=7),
        albumin("near", 3.0, days=4),
    )
    found = finding(a, "hypercalcemia")
    assert found.value == pytest.approx(11.0)
    assert [e.reference for e in found.supporting] == ["Observation/near"]


def test_laboratory_corrected_calcium_is_used_as_is() -> None:
    a = run(breast_cancer(), corrected_calcium("cc", 11.0), albumin("alb", 2.0))
    found = finding(a, "hypercalcemia")
    assert found.value == 11.0 and found.supporting == ()
    assert found.evidence[0].kind == "CALCIUM_CORRECTED"
    assert codes(run(breast_cancer(), corrected_calcium("cc", 2.9, unit="mmol/L"))) == [
        "hypercalcemia"
    ]


def test_same_time_total_and_corrected_prefers_the_corrected() -> None:
    a = run(breast_cancer(), calcium("total", 10.4), corrected_calcium("cc", 11.6))
    assert refs(finding(a, "hypercalcemia")) == ["Observation/cc"]
    assert (
        run(breast_cancer(), calcium("total", 11.0), corrected_calcium("cc", 10.1)).findings == ()
    )


# -- ionized ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "grade"),
    [(1.33, 1), (1.5, 1), (1.51, 2), (1.6, 2), (1.61, 3), (1.8, 3), (1.81, 4)],
)
def test_ionized_calcium_has_its_own_limit_and_grades(value: float, grade: int) -> None:
    found = finding(run(breast_cancer(), ionized("i", value)), "hypercalcemia")
    assert (found.grade, found.upper_limit, found.unit) == (grade, 1.32, "mmol/L")


def test_ionized_at_its_limit_is_normal_and_ionized_codes_count() -> None:
    assert run(breast_cancer(), ionized("i", 1.32)).findings == ()
    for code in ("1994-3", "1995-0"):
        assert codes(run(breast_cancer(), ionized("i", 1.4, code=code))) == ["hypercalcemia"]
    for code in ("17863-2", "17864-0"):
        assert codes(run(breast_cancer(), ionized("i", 6.0, unit="mg/dL", code=code))) == [
            "hypercalcemia"
        ]


def test_ionized_is_never_albumin_corrected() -> None:
    a = run(breast_cancer(), ionized("i", 1.30), albumin("alb", 2.0))
    assert a.findings == ()


def test_ionized_and_total_are_separate_histories_worst_leads() -> None:
    a = run(breast_cancer(), calcium("total", 10.8, days=1), ionized("i", 1.7, days=2))
    found = finding(a, "hypercalcemia")
    assert refs(found) == ["Observation/i", "Observation/total"]
    assert (found.grade, found.unit, found.priority) == (3, "mmol/L", "stat")


# -- rising-calcium ----------------------------------------------------------------------------


def _rising(latest: float, *baseline: tuple[float, int], **kw: float) -> list[str]:
    history = [calcium(f"b{i}", v, days=d) for i, (v, d) in enumerate(baseline)]
    return codes(run(breast_cancer(), *history, calcium("ca", latest, **kw)))


def test_rising_calcium_is_routine_with_baseline_and_limit() -> None:
    a = run(breast_cancer(), calcium("b", 9.0, days=100), calcium("ca", 10.2))
    found = finding(a, "rising-calcium")
    assert found.priority == "routine" and a.priority == "routine"
    assert (found.value, found.baseline, found.upper_limit) == (10.2, 9.0, 10.5)
    assert refs(found) == ["Observation/ca"]
    assert [e.reference for e in found.supporting] == ["Observation/b"]
    assert "baseline 9 mg/dL" in found.reason


def test_rising_calcium_floor_is_10_mg_per_decilitre() -> None:
    assert _rising(10.0, (9.0, 100)) == ["rising-calcium"]
    assert _rising(9.99, (8.0, 100)) == []


def test_rising_calcium_needs_ten_percent_above_baseline() -> None:
    assert _rising(10.12, (9.2, 100)) == ["rising-calcium"]  # exactly 10 %
    assert _rising(10.11, (9.2, 100)) == []


def test_rising_calcium_at_the_limit_and_above_it() -> None:
    assert _rising(10.5, (9.0, 100)) == ["rising-calcium"]
    assert _rising(10.6, (9.0, 100)) == ["hypercalcemia"]


def test_rising_calcium_needs_a_baseline() -> None:
    assert _rising(10.4) == []


@pytest.mark.parametrize(
    ("days", "in_baseline"), [(30, False), (31, True), (365, True), (366, False)]
)
def test_baseline_window_is_31_to_365_days_before_the_latest(days: int, in_baseline: bool) -> None:
    assert (_rising(10.3, (9.0, days)) == ["rising-calcium"]) is in_baseline


def test_baseline_is_measured_from_the_latest_value_not_from_t() -> None:
    # latest 20 days before T; a value 380 days before T is 360 days before the latest.
    assert _rising(10.3, (9.0, 380), days=20) == ["rising-calcium"]


def test_baseline_is_the_median() -> None:
    odd = run(
        breast_cancer(),
        *[calcium(f"b{v}", v, days=40 + v) for v in (8.0, 9.0, 9.6)],
        calcium("ca", 10.3),
    )
    assert finding(odd, "rising-calcium").baseline == 9.0
    even = run(
        breast_cancer(),
        *[calcium(f"b{v}", v, days=40 + v) for v in (8.0, 9.0, 9.2, 9.8)],
        calcium("ca", 10.3),
    )
    assert finding(even, "rising-calcium").baseline == pytest.approx(9.1)
    high_median = [calcium(f"b{v}", v, days=40 + v) for v in (8.0, 9.5, 9.6)]
    assert codes(run(breast_cancer(), *high_median, calcium("ca", 10.3))) == []


def test_baseline_uses_corrected_values_where_an_albumin_allows() -> None:
    # Baseline total 9.0: 10.4 is 15.6 % above it; albumin 2.5 makes the baseline 10.2 (2 %).
    plain = [breast_cancer(), calcium("b", 9.0, days=100), calcium("ca", 10.4)]
    assert codes(run(*plain)) == ["rising-calcium"]
    assert run(*plain, albumin("alb", 2.5, days=101)).findings == ()
    # Baseline total 9.5 (7 % below 10.2); albumin 5.0 corrects it to 8.7 (a 17 % rise).
    plain = [breast_cancer(), calcium("b", 9.5, days=100), calcium("ca", 10.2)]
    assert run(*plain).findings == ()
    found = finding(run(*plain, albumin("alb", 5.0, days=99)), "rising-calcium")
    assert found.baseline == pytest.approx(8.7)
    assert [e.reference for e in found.supporting] == ["Observation/b", "Observation/alb"]


def test_ionized_values_never_make_rising_calcium() -> None:
    a = run(breast_cancer(), ionized("b", 1.1, days=100), ionized("i", 1.3))
    assert a.findings == ()
