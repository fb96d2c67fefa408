"""Red-flag qualifiers (§5): listed with findings only, never changing the priority."""

from __future__ import annotations

import pytest

from tests.builders.rules import (
    ICD9,
    ICD10CM,
    SNOMED,
    ago,
    alp,
    back_pain,
    breast_cancer,
    calcium,
    codes,
    coding,
    flag_codes,
    ggt,
    observation,
    pain_score,
    run,
    weight_loss,
)


def _with_finding(*extra: dict[str, object]) -> list[str]:
    return flag_codes(run(breast_cancer(), calcium("ca", 10.8), *extra))  # urgent finding


def test_no_red_flag_without_a_finding() -> None:
    a = run(breast_cancer(), back_pain("hs", 2, "M54.6", ICD10CM), weight_loss("w", 2))
    assert codes(a) == ["new-back-pain"]  # the high-spine pain is itself new back pain
    assert flag_codes(a) == ["high-spine-back-pain", "weight-loss"]
    quiet = run(
        breast_cancer(),
        back_pain("old", 200, "M54.6", ICD10CM),
        back_pain("hs", 2, "M54.6", ICD10CM),
        weight_loss("w", 2),
    )
    assert quiet.findings == () and quiet.red_flags == ()


@pytest.mark.parametrize(
    ("code", "system"),
    [
        ("M54.6", ICD10CM),
        ("M54.2", ICD10CM),
        ("279038004", SNOMED),
        ("81680005", SNOMED),
        ("724.1", ICD9),
        ("723.1", ICD9),
    ],
)
def test_high_spine_back_pain(code: str, system: str) -> None:
    assert _with_finding(back_pain("hs", 3, code, system)) == ["high-spine-back-pain"]


def test_low_back_pain_is_not_high_spine() -> None:
    assert _with_finding(back_pain("lb", 3, "M54.50", ICD10CM)) == []


@pytest.mark.parametrize(("days", "listed"), [(30, True), (31, False)])
def test_red_flags_must_be_recent(days: int, listed: bool) -> None:
    assert bool(_with_finding(back_pain("hs", days, "M54.2", ICD10CM))) is listed
    assert bool(_with_finding(weight_loss("w", days))) is listed


def test_weight_loss_both_codes() -> None:
    snomed = {
        "resourceType": "Condition",
        "id": "w",
        "code": coding(SNOMED, "448765001"),
        "onsetDateTime": ago(3),
    }
    assert _with_finding(snomed) == ["weight-loss"]
    assert _with_finding(weight_loss("w", 3)) == ["weight-loss"]


def test_red_flags_do_not_change_the_priority() -> None:
    plain = run(breast_cancer(), calcium("ca", 10.8))
    flagged = run(
        breast_cancer(),
        calcium("ca", 10.8),
        back_pain("hs", 40, "M54.6", ICD10CM),
        back_pain("hs2", 3, "M54.6", ICD10CM),
        weight_loss("w", 3),
        pain_score("p1", 2, 10),
        pain_score("p2", 6, 1),
    )
    assert flag_codes(flagged) == ["high-spine-back-pain", "progressive-pain", "weight-loss"]
    assert flagged.priority == plain.priority == "urgent"


# -- progressive pain --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "listed"), [(3, 5, True), (3, 4.9, False), (0, 10, True)]
)
def test_progressive_pain_needs_a_rise_of_two_points(
    before: float, after: float, listed: bool
) -> None:
    assert bool(_with_finding(pain_score("p1", before, 10), pain_score("p2", after, 1))) is listed


@pytest.mark.parametrize(("gap", "listed"), [(30, True), (31, False)])
def test_progressive_pain_rise_within_30_days(gap: int, listed: bool) -> None:
    flags = _with_finding(pain_score("p1", 2, gap + 1), pain_score("p2", 6, 1))
    assert bool(flags) is listed


def test_progressive_pain_compares_the_latest_with_the_lowest_before_it() -> None:
    rising_then_easing = [pain_score("p1", 3, 20), pain_score("p2", 8, 10), pain_score("p3", 4, 1)]
    assert _with_finding(*rising_then_easing) == []
    worse_now = [pain_score("p1", 6, 20), pain_score("p2", 3, 10), pain_score("p3", 5, 1)]
    a = run(breast_cancer(), calcium("ca", 10.8), *worse_now)
    flag = a.red_flags[0]
    assert flag.code == "progressive-pain"
    assert [e.reference for e in flag.evidence] == ["Observation/p2", "Observation/p3"]
    assert "from 3" in flag.text and "to 5" in flag.text


def test_latest_pain_score_must_be_recent() -> None:
    assert _with_finding(pain_score("p1", 1, 45), pain_score("p2", 6, 31)) == []


def test_pain_score_without_back_context_is_ignored() -> None:
    assert (
        _with_finding(pain_score("p1", 1, 10, back=False), pain_score("p2", 8, 1, back=False)) == []
    )


def test_pain_score_with_back_pain_coding_is_back_context_and_back_pain() -> None:
    def scored(rid: str, score: float, days: int) -> dict[str, object]:
        o = observation(rid, "72514-3", when=ago(days), value=score, unit="{score}")
        o["code"]["coding"].append({"system": SNOMED, "code": "279039007"})
        return o

    a = run(breast_cancer(), scored("p1", 2, 10), scored("p2", 7, 1))
    assert codes(a) == ["new-back-pain"] and flag_codes(a) == ["progressive-pain"]
    assert codes(run(breast_cancer(), scored("p0", 0, 1))) == []  # a score of 0 is no pain


def test_pain_score_outside_the_scale_is_skipped_with_a_note() -> None:
    a = run(breast_cancer(), calcium("ca", 10.8), pain_score("p1", 1, 10), pain_score("p2", 11, 1))
    assert flag_codes(a) == []
    assert a.notes == ("Observation/p2: value outside the {score} scale; not used",)


def test_pain_score_as_integer_without_unit() -> None:
    def scored(rid: str, score: int, days: int) -> dict[str, object]:
        o = pain_score(rid, score, days)
        del o["valueQuantity"]
        o["valueInteger"] = score
        return o

    assert _with_finding(scored("p1", 2, 10), scored("p2", 5, 1)) == ["progressive-pain"]


# -- GGT ---------------------------------------------------------------------------------------


def test_ggt_above_its_limit_with_an_alp_finding() -> None:
    a = run(breast_cancer(), alp("a", 300), ggt("g", 90, high=55))
    assert flag_codes(a) == ["ggt-raised"]
    assert "hepatic" in a.red_flags[0].text
    assert a.priority == "routine"  # the qualifier changes nothing


def test_ggt_at_its_limit_or_without_an_alp_finding_is_not_listed() -> None:
    assert flag_codes(run(breast_cancer(), alp("a", 300), ggt("g", 55, high=55))) == []
    assert flag_codes(run(breast_cancer(), calcium("ca", 10.8), ggt("g", 90, high=55))) == []


def test_ggt_without_any_upper_limit_is_not_judged_and_says_so() -> None:
    a = run(breast_cancer(), alp("a", 300), ggt("g", 900))
    assert flag_codes(a) == []
    assert a.notes == (
        "Observation/g: no upper limit for GGT (no referenceRange.high); not judged",
    )
