"""clinical-rules.md §8 (v1.1): the readings the v1 text left open, one test group each.

Status codes are read by code: a verificationStatus coding `refuted` or `entered-in-error`
without its `system` counts exactly as with it, for eligibility (§1), for what counts (§2) and
for retraction (§6, workers.rules.status.withdrawn, which workers/alerts/withdrawal.py uses).
"""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ruleset import load_config
from tests.builders.rules import (
    ICD10,
    SNOMED,
    VER_STATUS,
    albumin,
    alp,
    back_pain,
    breast_cancer,
    calcium,
    codes,
    condition,
    day_ago,
    finding,
    ionized,
    observation,
    pain_score,
    refs,
    run,
)
from workers.rules.status import verification_excluded, withdrawn

EXCLUDED = ("refuted", "entered-in-error")
KEPT = ("confirmed", "provisional", "differential", "unconfirmed")


def status(code: str, *, system: str | None = None) -> dict[str, Any]:
    coding: dict[str, Any] = {"code": code}
    if system is not None:
        coding["system"] = system
    return {"coding": [coding]}


# -- status by code: eligibility, what counts, retraction -----------------------------------


@pytest.mark.parametrize("code", EXCLUDED)
def test_breast_cancer_refuted_without_system_does_not_make_eligible(code: str) -> None:
    a = run(breast_cancer(verificationStatus=status(code)), back_pain("bp", 5))
    assert not a.eligible and a.findings == ()


@pytest.mark.parametrize("code", KEPT)
def test_other_verification_codes_without_system_keep_eligibility(code: str) -> None:
    a = run(breast_cancer(verificationStatus=status(code)), back_pain("bp", 5))
    assert a.eligible and codes(a) == ["new-back-pain"]


@pytest.mark.parametrize("code", EXCLUDED)
def test_back_pain_refuted_without_system_does_not_count(code: str) -> None:
    pain = back_pain("bp", 5)
    pain["verificationStatus"] = status(code)
    assert run(breast_cancer(), pain).findings == ()


@pytest.mark.parametrize("code", EXCLUDED)
def test_known_metastasis_refuted_without_system_does_not_suppress(code: str) -> None:
    mets = condition("mets", "C79.51", onset=day_ago(200), verificationStatus=status(code))
    assert codes(run(breast_cancer(), mets, back_pain("bp", 5))) == ["new-back-pain"]


def test_status_is_read_by_code_in_any_coding() -> None:
    concept = {"coding": [{"code": "confirmed"}, {"system": VER_STATUS, "code": "refuted"}]}
    assert verification_excluded(concept)
    assert not verification_excluded({"text": "refuted"})  # words are not a status
    assert not verification_excluded(None)
    assert not verification_excluded({"coding": "refuted"})  # malformed: not a status
    assert not verification_excluded({"coding": [None, 3, {"code": "confirmed"}]})
    # another system's "refuted" is that system's code, not the HL7 status
    assert not verification_excluded(status("refuted", system="http://example.org/local"))


@pytest.mark.parametrize("code", EXCLUDED)
def test_retraction_reads_a_condition_status_like_eligibility(code: str) -> None:
    for system in (None, VER_STATUS):
        cond = breast_cancer(verificationStatus=status(code, system=system))
        assert withdrawn(cond)
        assert not run(cond, back_pain("bp", 5)).eligible


def test_retraction_of_observations_and_other_types() -> None:
    assert withdrawn(calcium("ca", 12.0, status="entered-in-error"))
    assert withdrawn(calcium("ca", 12.0, status="cancelled"))
    assert not withdrawn(calcium("ca", 12.0, status="registered"))  # never alerted on
    assert not withdrawn(calcium("ca", 12.0))
    assert not withdrawn({"resourceType": "Patient", "id": "p1"})
    assert not withdrawn(breast_cancer())


VERIFICATION_CODINGS = st.lists(
    st.builds(
        lambda code, system: {"code": code} if system is None else {"system": system, "code": code},
        st.sampled_from([*EXCLUDED, *KEPT]),
        st.sampled_from([None, VER_STATUS]),
    ),
    max_size=3,
)


@settings(max_examples=200, deadline=None, database=None)
@given(codings=VERIFICATION_CODINGS)
def test_eligibility_and_retraction_agree_on_every_status(codings: list[dict[str, Any]]) -> None:
    """Property: a breast-cancer Condition makes a patient eligible exactly when retraction
    would not call it withdrawn, whatever its codings, with or without `system`."""
    cond = breast_cancer(verificationStatus={"coding": codings})
    a = run(cond, back_pain("bp", 5))
    assert a.eligible is not withdrawn(cond)
    assert a.eligible is not any(c["code"] in EXCLUDED for c in codings)


@settings(max_examples=200, deadline=None, database=None)
@given(codings=VERIFICATION_CODINGS, days=st.integers(0, 40))
def test_dropping_the_system_changes_nothing(codings: list[dict[str, Any]], days: int) -> None:
    """Property: the status system never decides; the same codes without it give the same
    assessment and the same retraction answer."""
    bare = [{"code": c["code"]} for c in codings]
    with_system = back_pain("bp", days)
    with_system["verificationStatus"] = {"coding": codings}
    without = back_pain("bp", days)
    without["verificationStatus"] = {"coding": bare}
    assert run(breast_cancer(), with_system) == run(breast_cancer(), without)
    assert withdrawn(with_system) is withdrawn(without)


# -- calendar-day windows and future records ----------------------------------------------


def test_thirty_days_and_six_hours_is_day_thirty_inside() -> None:
    a = run(breast_cancer(), calcium("ca", 11.0, days=30.25))
    assert codes(a) == ["hypercalcemia"]
    assert run(breast_cancer(), calcium("ca", 11.0, days=31)).findings == ()


def test_records_dated_after_t_are_ignored() -> None:
    assert run(breast_cancer(), calcium("ca", 12.0, days=-0.1)).findings == ()
    assert run(breast_cancer(), back_pain("bp", -1)).findings == ()
    # a breast-cancer Condition dated after T does not make the patient eligible yet
    assert not run(breast_cancer(onset=day_ago(-3)), back_pain("bp", 5)).eligible


# -- calcium limits in mg/dL ----------------------------------------------------------------


def test_2_62_mmol_per_litre_is_above_the_mg_per_dl_limit() -> None:
    found = finding(run(breast_cancer(), calcium("ca", 2.62, unit="mmol/L")), "hypercalcemia")
    assert found.value == pytest.approx(10.50096) and found.grade == 1
    assert run(breast_cancer(), calcium("ca", 2.61, unit="mmol/L")).findings == ()


# -- latest calcium per kind ----------------------------------------------------------------


def test_total_and_ionized_are_each_judged_on_their_own_latest() -> None:
    # total: latest (day 2) is normal; ionized: latest (day 4) is grade 2 → asap
    a = run(
        breast_cancer(),
        calcium("ca-old", 13.0, days=6),
        calcium("ca-new", 9.8, days=2),
        ionized("ion", 1.55, days=4),
    )
    found = finding(a, "hypercalcemia")
    assert refs(found) == ["Observation/ion"] and found.grade == 2


def test_the_finding_takes_the_higher_grade_of_the_two_kinds() -> None:
    a = run(breast_cancer(), calcium("ca", 13.0, days=3), ionized("ion", 1.40, days=1))
    found = finding(a, "hypercalcemia")
    assert found.grade == 3 and a.priority == "stat"
    assert refs(found) == ["Observation/ca", "Observation/ion"]


# -- nearest albumin, a tie goes to the later one -------------------------------------------


def test_equidistant_albumins_the_later_one_corrects() -> None:
    a = run(
        breast_cancer(),
        calcium("ca", 10.2, days=5),
        albumin("before", 4.0, days=6),
        albumin("after", 2.8, days=4),
    )
    found = finding(a, "hypercalcemia")
    assert found.value == pytest.approx(11.16)
    assert [e.reference for e in found.supporting] == ["Observation/after"]
    swapped = run(
        breast_cancer(),
        calcium("ca", 10.2, days=5),
        albumin("before", 2.8, days=6),
        albumin("after", 4.0, days=4),
    )
    assert swapped.findings == ()


def test_albumin_window_counts_calendar_days() -> None:
    # 2 calendar days before (at any time that day) corrects; 3 days does not
    near = run(breast_cancer(), calcium("ca", 10.2, days=5), albumin("alb", 2.8, days=7.4))
    assert finding(near, "hypercalcemia").value == pytest.approx(11.16)
    far = run(breast_cancer(), calcium("ca", 10.2, days=5), albumin("alb", 2.8, days=8))
    assert far.findings == ()


# -- referenceRange.high without a unit -----------------------------------------------------


def test_unitless_reference_high_is_in_the_value_unit() -> None:
    # 2.60 mmol/L with high 2.55 (no unit: mmol/L) → 10.42 > 10.22 mg/dL
    ca = calcium("ca", 2.60, unit="mmol/L", high=2.55)
    found = finding(run(breast_cancer(), ca), "hypercalcemia")
    assert found.upper_limit == pytest.approx(2.55 * 4.008)


# -- bone-specific ALP is its own analyte ---------------------------------------------------


def test_bone_alp_baseline_is_built_from_bone_values_only() -> None:
    a = run(
        breast_cancer(),
        alp("total-1", 300.0, days=100),
        alp("total-2", 300.0, days=200),
        alp("bone-1", 60.0, days=100, code="1777-2"),
        alp("bone-2", 60.0, days=200, code="1777-2"),
        alp("bone-new", 100.0, days=3, code="1777-2"),
    )
    found = finding(a, "rising-alp")
    assert found.baseline == pytest.approx(60.0) and refs(found) == ["Observation/bone-new"]


def test_bone_alp_upper_limit_defaults_to_the_alp_limit() -> None:
    assert codes(run(breast_cancer(), alp("bone", 150.0, code="1777-2"))) == ["rising-alp"]
    assert run(breast_cancer(), alp("bone", 140.0, code="1777-2")).findings == ()
    own = alp("bone", 100.0, code="1777-2", high=90.0, high_unit="U/L")
    assert finding(run(breast_cancer(), own), "rising-alp").upper_limit == 90.0


# -- absent symptoms ------------------------------------------------------------------------


def test_pain_score_zero_is_no_back_pain_whatever_its_code() -> None:
    score = pain_score("score", 0, 3)
    score["code"]["coding"].append({"system": SNOMED, "code": "161891005"})
    assert run(breast_cancer(), score).findings == ()
    score["valueQuantity"]["value"] = 4
    assert codes(run(breast_cancer(), score)) == ["new-back-pain"]


def test_symptom_with_value_boolean_false_is_absent() -> None:
    absent = observation(
        "neuro", "R33.9", system="http://hl7.org/fhir/sid/icd-10-cm", when=day_ago(2)
    )
    absent["valueBoolean"] = False
    assert run(breast_cancer(), absent).findings == ()
    absent["valueBoolean"] = True
    assert codes(run(breast_cancer(), absent)) == ["suspected-mscc"]


# -- code systems ----------------------------------------------------------------------------


def test_who_icd10_breast_cancer_and_snomed_descendant_make_eligible() -> None:
    who = condition("bc", "C50.9", ICD10, onset="2019-03-01")
    assert run(who, back_pain("bp", 5)).eligible
    idc = condition("bc", "408643008", SNOMED, onset="2019-03-01")
    assert run(idc, back_pain("bp", 5)).eligible


def test_every_added_snomed_code_has_a_display() -> None:
    """v1.1 additions are listed one by one with their display (never an is-a filter)."""
    path = files("ruleset.data") / "valuesets" / "breast-cancer.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    snomed = next(i for i in data["compose"]["include"] if i["system"] == SNOMED)
    displays = {c["code"]: c.get("display") for c in snomed["concept"]}
    assert displays["408643008"] == "Infiltrating duct carcinoma of breast"
    assert "filter" not in snomed
    breast = next(vs for vs in load_config().value_sets if vs.name == "BREAST_CANCER")
    assert (SNOMED, "408643008") in breast.codes
    assert (SNOMED, "429740004") not in breast.codes  # family history stays out
