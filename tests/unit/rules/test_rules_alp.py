"""rising-alp (§5): above the limit, relative to baseline, urgent above 2.5 × the limit."""

from __future__ import annotations

import pytest

from tests.builders.rules import alp, breast_cancer, codes, finding, refs, run


def _alp(latest: float, *baseline: float, **kw: object) -> list[str]:
    history = [alp(f"b{i}", v, days=100 + i) for i, v in enumerate(baseline)]
    return codes(run(breast_cancer(), *history, alp("a", latest, **kw)))  # type: ignore[arg-type]


def test_above_the_limit_without_baseline_is_routine() -> None:
    a = run(breast_cancer(), alp("a", 148))
    found = finding(a, "rising-alp")
    assert (found.priority, found.value, found.upper_limit, found.baseline) == (
        "routine",
        148,
        147,
        None,
    )
    assert "no baseline" in found.reason and refs(found) == ["Observation/a"]


@pytest.mark.parametrize("value", [147, 100])
def test_at_or_below_the_limit_without_baseline_is_nothing(value: float) -> None:
    assert _alp(value) == []


def test_above_the_limit_needs_1_25_times_the_baseline_when_there_is_one() -> None:
    assert _alp(200, 160) == ["rising-alp"]  # exactly 1.25 ×
    assert _alp(199.9, 160) == []  # a known, stable elevation
    assert (
        finding(run(breast_cancer(), alp("b", 160, days=60), alp("a", 200)), "rising-alp").baseline
        == 160
    )


def test_within_the_limit_needs_1_5_times_the_baseline() -> None:
    assert _alp(120, 80) == ["rising-alp"]  # exactly 1.5 ×
    assert _alp(119.9, 80) == []
    assert _alp(147, 98) == ["rising-alp"]  # at the limit counts as within it


@pytest.mark.parametrize(
    ("value", "priority"), [(367.5, "routine"), (367.6, "urgent"), (900, "urgent")]
)
def test_urgent_above_2_5_times_the_limit(value: float, priority: str) -> None:
    found = finding(run(breast_cancer(), alp("a", value)), "rising-alp")
    assert found.priority == priority
    assert ("more than 2.5 ×" in found.reason) is (priority == "urgent")


def test_own_reference_range_sets_the_limit_and_the_urgent_threshold() -> None:
    found = finding(run(breast_cancer(), alp("a", 260, high=100)), "rising-alp")
    assert (found.upper_limit, found.priority) == (100, "urgent")
    assert _alp(140, high=150) == []


def test_microkatal_values_and_limits_convert() -> None:
    found = finding(run(breast_cancer(), alp("a", 2.6, unit="ukat/L", high=2.0)), "rising-alp")
    assert found.value == pytest.approx(156) and found.upper_limit == pytest.approx(120)


@pytest.mark.parametrize(("days", "fires"), [(30, True), (31, False)])
def test_latest_alp_must_be_recent(days: int, fires: bool) -> None:
    assert bool(run(breast_cancer(), alp("a", 300, days=days)).findings) is fires


def test_baseline_window_edges() -> None:
    for days, counts in ((30, False), (31, True), (365, True), (366, False)):
        a = run(breast_cancer(), alp("b", 80, days=days), alp("a", 120))
        assert bool(a.findings) is counts, days


def test_alternate_alp_codes_and_bone_specific_history() -> None:
    assert _alp(200, code="77141-0") == ["rising-alp"]
    # Bone-specific ALP (1777-2) is its own history: a total-ALP baseline does not apply.
    a = run(breast_cancer(), alp("total", 40, days=100), alp("bone", 65, code="1777-2"))
    assert a.findings == ()
    b = run(
        breast_cancer(),
        alp("bone-b", 40, days=100, code="1777-2"),
        alp("bone", 65, code="1777-2"),
        alp("total", 90, days=1),
    )
    found = finding(b, "rising-alp")
    assert refs(found) == ["Observation/bone"] and found.baseline == 40
