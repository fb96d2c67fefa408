"""§8 Clarifications (v1.1): one scenario per reading of section 8, with patients on both sides
of its boundary where it draws one (tests/unit/fixtures/test_v11_coverage.py maps each bullet to
its fixture). These are the only fixtures whose Conditions may carry a verificationStatus
without `system`.
"""

from __future__ import annotations

from .builders import (
    BASELINE_DATES,
    BP_DATE,
    ICD9CM,
    ICD10,
    ICD10CM,
    NEURO_DATE,
    SCT,
    Fixture,
    Section,
    coding,
)

IONIZED = "Calcium.ionized [Moles/volume] in Blood"
BONE_ALP = "Alkaline phosphatase.bone [Enzymatic activity/volume] in Serum or Plasma"
BACKACHE = coding(SCT, "161891005", "Backache")


def fx47_v11_calendar_day_windows() -> Fixture:
    f = Fixture(
        47,
        "v11-calendar-day-windows",
        "v1.1: windows count UTC calendar days: calcium 11.0 at 2026-05-02T06:00Z (30 days 6 h "
        "old, day T-30) -> urgent but at 2026-05-01T23:00Z (day T-31) -> none; a neuro deficit "
        "on day T-14 (14 days 11 h) -> stat, on day T-15 -> none; a prior back pain 31 calendar "
        "days (30 days 10 h) before makes back pain not new, 30 days before does not; back pain "
        "on the same UTC day as the breast-cancer diagnosis (earlier hour) is on/after it, the "
        "day before is not.",
    )
    p = f.patient()
    p.breast_cancer()
    ca = p.calcium(11.0, effective="2026-05-02T06:00:00Z")
    p.alert("urgent", ["hypercalcemia"], red_flags=[], evidence=[ca], note="day T-30: recent")
    p = f.patient("b")
    p.breast_cancer()
    p.calcium(11.0, effective="2026-05-01T23:00:00Z")
    p.no_alert("day T-31: not recent, though only 30 days 13 h before asOf")
    p = f.patient("c")
    p.breast_cancer()
    n = p.neuro(onset="2026-05-18T01:00:00Z")
    p.alert("stat", ["suspected-mscc"], red_flags=[], evidence=[n], note="day T-14: inside")
    p = f.patient("d")
    p.breast_cancer()
    p.neuro(onset="2026-05-17T23:00:00Z")
    p.no_alert("day T-15: outside the 14-day window")
    p = f.patient("e")
    p.breast_cancer()
    p.back_pain(onset="2026-04-19T23:00:00Z")
    p.back_pain()
    p.no_alert("prior back pain on 2026-04-19: 31 calendar days before 2026-05-20 -> not new")
    p = f.patient("f")
    p.breast_cancer()
    p.back_pain(onset="2026-04-20T01:00:00Z")
    bp = p.back_pain()
    p.new_back_pain_alert(bp, note="prior back pain 30 calendar days before: not in 31-365")
    p = f.patient("g")
    p.breast_cancer(onset="2026-05-20T18:00:00Z")
    bp = p.back_pain()
    p.new_back_pain_alert(bp, note="back pain 09:00, diagnosis 18:00 the same UTC day: on/after")
    p = f.patient("h")
    p.breast_cancer(onset="2026-05-21T00:30:00Z")
    p.back_pain()
    p.no_alert("back pain the UTC day before the diagnosis")
    return f


def fx48_v11_future_records_ignored() -> Fixture:
    f = Fixture(
        48,
        "v11-future-records-ignored",
        "v1.1: records dated after asOf are ignored: calcium 13.0 at 18:00 on the asOf day "
        "(after T) -> none, at 11:00 -> stat; a breast-cancer Condition dated after T -> not "
        "eligible; a normal calcium dated the day after T does not hide the 12.0 before it -> "
        "asap.",
    )
    p = f.patient()
    p.breast_cancer()
    p.calcium(13.0, effective="2026-06-01T18:00:00Z")
    p.no_alert("dated 6 h after asOf")
    p = f.patient("b")
    p.breast_cancer()
    ca = p.calcium(13.0, effective="2026-06-01T11:00:00Z")
    p.alert("stat", ["hypercalcemia"], red_flags=[], evidence=[ca], note="1 h before asOf: grade 3")
    p = f.patient("c")
    p.breast_cancer(onset="2026-06-03T10:00:00Z")
    p.back_pain()
    p.no_alert("breast cancer dated 2026-06-03, after asOf: not eligible as of T")
    p = f.patient("d")
    p.breast_cancer()
    ca = p.calcium(12.0)
    p.calcium(9.5, effective="2026-06-02T08:00:00Z")
    p.alert("asap", ["hypercalcemia"], red_flags=[], evidence=[ca], note="9.5 is after asOf")
    return f


def fx49_v11_calcium_limit_mg_dl() -> Fixture:
    f = Fixture(
        49,
        "v11-calcium-limit-mg-dl",
        "v1.1: calcium limits are in mg/dL with the exact factor: 2000-8 2.62 mmol/L = "
        "10.501 mg/dL > 10.5 -> urgent; 2.61 mmol/L = 10.461 -> none; 17861-6 10.5 mg/dL "
        "(not above) -> none; 10.6 mg/dL -> urgent.",
    )
    for suffix, value, unit, fires in (
        ("", 2.62, "mmol/L", True),
        ("b", 2.61, "mmol/L", False),
        ("c", 10.5, "mg/dL", False),
        ("d", 10.6, "mg/dL", True),
    ):
        p = f.patient(suffix)
        p.breast_cancer()
        ca = p.calcium(value, unit)
        mg = round(value * 4.008, 3) if unit == "mmol/L" else value
        if fires:
            p.alert("urgent", ["hypercalcemia"], red_flags=[], evidence=[ca], note=f"{mg} mg/dL")
        else:
            p.no_alert(f"{mg} mg/dL is not above 10.5 mg/dL")
    return f


def fx50_v11_latest_calcium_per_kind() -> Fixture:
    f = Fixture(
        50,
        "v11-latest-calcium-per-kind",
        "v1.1: total and ionized calcium are each judged on their own latest recent value and "
        "the finding takes the higher grade: total 13.0 then 9.8 (latest normal) with ionized "
        "1.55 -> asap from the ionized; total 13.0 (grade 3) with a later ionized 1.40 "
        "(grade 1) -> stat; ionized 1.70 then 1.25 with total 9.5 -> none.",
    )
    p = f.patient()
    p.breast_cancer()
    p.calcium(13.0, effective="2026-05-20T08:00:00Z")
    p.calcium(9.8)
    ion = p.lab("ion", "1994-3", IONIZED, 1.55, "mmol/L", effective="2026-05-22T08:00:00Z")
    p.alert(
        "asap",
        ["hypercalcemia"],
        red_flags=[],
        evidence=[ion],
        note="latest total 9.8 is normal; latest ionized 1.55: grade 2",
    )
    p = f.patient("b")
    p.breast_cancer()
    ca = p.calcium(13.0, effective="2026-05-20T08:00:00Z")
    ion = p.lab("ion", "1994-3", IONIZED, 1.40, "mmol/L")
    p.alert(
        "stat",
        ["hypercalcemia"],
        red_flags=[],
        evidence=[ca, ion],
        note="total 13.0 grade 3, ionized 1.40 grade 1: the higher grade decides",
    )
    p = f.patient("c")
    p.breast_cancer()
    p.lab("ion", "1994-3", IONIZED, 1.70, "mmol/L", effective="2026-05-20T08:00:00Z")
    p.lab("ion", "1994-3", IONIZED, 1.25, "mmol/L")
    p.calcium(9.5)
    p.no_alert("latest ionized 1.25 and latest total 9.5 are both normal")
    return f


def fx51_v11_nearest_albumin() -> Fixture:
    f = Fixture(
        51,
        "v11-nearest-albumin",
        "v1.1: the albumin nearest the calcium corrects it, a tie goes to the later one, within "
        "2 calendar days: calcium 10.2 with albumins 4.0 one day before and 2.8 one day after "
        "-> 10.2 + 0.8 x 1.2 = 11.16 urgent; swapped -> none; 4.0 12 h before beats 2.8 24 h "
        "after -> none; 2.8 two calendar days before (55.5 h) -> urgent; three calendar days "
        "before (56.5 h) -> none.",
    )
    p = f.patient()
    p.breast_cancer()
    ca = p.calcium(10.2)
    p.albumin(4.0, effective="2026-05-24T08:00:00Z")
    p.albumin(2.8, effective="2026-05-26T08:00:00Z")
    p.alert("urgent", ["hypercalcemia"], red_flags=[], evidence=[ca], note="tie: the later 2.8")
    p = f.patient("b")
    p.breast_cancer()
    p.calcium(10.2)
    p.albumin(2.8, effective="2026-05-24T08:00:00Z")
    p.albumin(4.0, effective="2026-05-26T08:00:00Z")
    p.no_alert("tie: the later 4.0 -> 10.2 uncorrected")
    p = f.patient("c")
    p.breast_cancer()
    p.calcium(10.2)
    p.albumin(4.0, effective="2026-05-24T20:00:00Z")
    p.albumin(2.8, effective="2026-05-26T08:00:00Z")
    p.no_alert("nearest is 4.0 (12 h before), not 2.8 (24 h after)")
    p = f.patient("d")
    p.breast_cancer()
    ca = p.calcium(10.2)
    p.albumin(2.8, effective="2026-05-23T00:30:00Z")
    p.alert("urgent", ["hypercalcemia"], red_flags=[], evidence=[ca], note="2 calendar days before")
    p = f.patient("e")
    p.breast_cancer()
    p.calcium(10.2)
    p.albumin(2.8, effective="2026-05-22T23:30:00Z")
    p.no_alert("3 calendar days before, though only 56.5 h")
    return f


def fx52_v11_unitless_reference_high() -> Fixture:
    f = Fixture(
        52,
        "v11-unitless-reference-high",
        "v1.1: a referenceRange.high without a unit is in its value's unit: calcium 2.60 "
        "mmol/L (10.42 mg/dL) with high 2.55 (= 10.22 mg/dL) -> urgent (the default 10.5 would "
        "give none); ALP 3.0 ukat/L (180 U/L) with high 3.5 (= 210 U/L) -> none (3.5 U/L or "
        "the default 147 would alert); ALP 4.0 ukat/L (240 U/L) with high 3.5 -> routine.",
    )
    p = f.patient()
    p.breast_cancer()
    ca = p.calcium(2.60, "mmol/L", ref_high=(2.55, None, None))
    p.alert("urgent", ["hypercalcemia"], red_flags=[], evidence=[ca], note="limit 2.55 mmol/L")
    p = f.patient("b")
    p.breast_cancer()
    p.alp(3.0, "ukat/L", ref_high=(3.5, None, None))
    p.no_alert("180 U/L within its own limit 210 U/L, no baseline")
    p = f.patient("c")
    p.breast_cancer()
    a = p.alp(4.0, "ukat/L", ref_high=(3.5, None, None))
    p.alert("routine", ["rising-alp"], red_flags=[], evidence=[a], note="240 U/L > 210 U/L")
    return f


def fx53_v11_bone_specific_alp() -> Fixture:
    f = Fixture(
        53,
        "v11-bone-specific-alp",
        "v1.1: bone-specific ALP (1777-2) is its own analyte: bone 100 U/L vs bone baseline 60 "
        "(1.67 x) -> routine although total ALP 300 shares the baseline dates; bone 150 with no "
        "range -> above the ALP default 147 -> routine; bone 140 -> none; total 120 vs total "
        "baseline 80 (1.5 x) -> routine although bone 200 shares the baseline dates.",
    )
    p = f.patient()
    p.breast_cancer()
    for d in BASELINE_DATES:
        p.alp(60, loinc="1777-2", display=BONE_ALP, effective=d)
        p.alp(300, effective=d)
    a = p.alp(100, loinc="1777-2", display=BONE_ALP)
    p.alert("routine", ["rising-alp"], red_flags=[], evidence=[a], note="baseline from bone only")
    p = f.patient("b")
    p.breast_cancer()
    a = p.alp(150, loinc="1777-2", display=BONE_ALP)
    p.alert("routine", ["rising-alp"], red_flags=[], evidence=[a], note="ALP default 147 U/L")
    p = f.patient("c")
    p.breast_cancer()
    p.alp(140, loinc="1777-2", display=BONE_ALP)
    p.no_alert("bone ALP 140 <= 147, no baseline")
    p = f.patient("d")
    p.breast_cancer()
    for d in BASELINE_DATES:
        p.alp(80, effective=d)
        p.alp(200, loinc="1777-2", display=BONE_ALP, effective=d)
    a = p.alp(120)
    p.alert("routine", ["rising-alp"], red_flags=[], evidence=[a], note="120 = 1.5 x total 80")
    return f


def fx54_v11_absent_symptoms() -> Fixture:
    f = Fixture(
        54,
        "v11-absent-symptoms",
        "v1.1: an absent symptom does not count whatever its code: a back pain score 0 whose "
        "code also carries backache 161891005 -> none, the same with score 4 -> urgent; a "
        "urinary-retention Observation R33.9 with valueBoolean false -> none, true -> stat.",
    )
    p = f.patient()
    p.breast_cancer()
    p.pain_score(0, BP_DATE, also=BACKACHE)
    p.no_alert("score 0: no pain")
    p = f.patient("b")
    p.breast_cancer()
    s = p.pain_score(4, BP_DATE, also=BACKACHE)
    p.new_back_pain_alert(s, note="score 4 with a backache coding: back pain")
    p = f.patient("c")
    p.breast_cancer()
    p.symptom(
        "neuro", ICD10CM, "R33.9", "Retention of urine", effective=NEURO_DATE, value_boolean=False
    )
    p.no_alert("valueBoolean false: absent")
    p = f.patient("d")
    p.breast_cancer()
    o = p.symptom(
        "neuro", ICD10CM, "R33.9", "Retention of urine", effective=NEURO_DATE, value_boolean=True
    )
    p.alert("stat", ["suspected-mscc"], red_flags=[], evidence=[o], note="valueBoolean true")
    return f


def fx55_v11_status_by_code() -> Fixture:
    f = Fixture(
        55,
        "v11-status-by-code",
        "v1.1: verificationStatus is read by code with or without system: a breast-cancer "
        "Condition refuted or entered-in-error without system -> not eligible; a back pain "
        "refuted without system does not count; confirmed without system counts -> urgent; a "
        "bone metastasis refuted without system does not suppress -> urgent.",
    )
    p = f.patient()
    p.breast_cancer(verification="refuted", clinical="resolved", verification_system=False)
    p.back_pain()
    p.no_alert("breast cancer refuted (no system)")
    p = f.patient("b")
    p.breast_cancer(verification="entered-in-error", verification_system=False)
    p.back_pain()
    p.no_alert("breast cancer entered-in-error (no system)")
    p = f.patient("c")
    p.breast_cancer()
    p.back_pain(verification="refuted", verification_system=False)
    p.no_alert("back pain refuted (no system)")
    p = f.patient("d")
    p.breast_cancer(verification_system=False)
    bp = p.back_pain(verification_system=False)
    p.new_back_pain_alert(bp, note="confirmed without system counts")
    p = f.patient("e")
    p.breast_cancer()
    p.bone_mets(verification="refuted", verification_system=False)
    bp = p.back_pain()
    p.new_back_pain_alert(bp, note="refuted bone metastasis (no system) does not suppress")
    return f


def fx56_v11_partial_retraction_state() -> Fixture:
    f = Fixture(
        56,
        "v11-partial-retraction-state",
        "v1.1: after a partial retraction the alert is what the remaining evidence supports "
        "(here in one write; the step-by-step revoke and re-issue at the lower priority is in "
        "tests/api/test_status_by_code.py): back pain with a calcium 13.0 entered in "
        "error -> urgent new-back-pain only; a back pain refuted without system with a calcium "
        "12.0 -> asap hypercalcemia only.",
    )
    p = f.patient()
    p.breast_cancer()
    bp = p.back_pain()
    p.calcium(13.0, status="entered-in-error")
    p.new_back_pain_alert(bp, note="the grade-3 calcium is withdrawn: urgent, not stat")
    p = f.patient("b")
    p.breast_cancer()
    p.back_pain(verification="refuted", verification_system=False)
    ca = p.calcium(12.0)
    p.alert("asap", ["hypercalcemia"], red_flags=[], evidence=[ca], note="back pain withdrawn")
    return f


def fx57_v11_code_systems() -> Fixture:
    f = Fixture(
        57,
        "v11-code-systems",
        "v1.1: ICD-10 (WHO) codes count like ICD-10-CM and BREAST_CANCER takes the SNOMED CT "
        "descendant 408643008: breast cancer as ICD-10 C50.9, ICD-10 Z85.3 or SNOMED 408643008, "
        "or back pain as ICD-10 M54.5 -> urgent; C50.9 sent as ICD-9-CM (wrong system) -> none.",
    )
    for suffix, system, code, display in (
        ("", ICD10, "C50.9", "Malignant neoplasm of breast, unspecified"),
        ("b", ICD10, "Z85.3", "Personal history of malignant neoplasm of breast"),
        ("c", SCT, "408643008", "Infiltrating duct carcinoma of breast"),
    ):
        p = f.patient(suffix)
        p.breast_cancer(system, code, display)
        p.new_back_pain_alert(p.back_pain(), note=f"breast cancer coded {code} ({system})")
    p = f.patient("d")
    p.breast_cancer()
    bp = p.back_pain(ICD10, "M54.5", "Low back pain")
    p.new_back_pain_alert(bp, note="back pain coded ICD-10 M54.5")
    p = f.patient("e")
    p.breast_cancer(ICD9CM, "C50.9", "Malignant neoplasm of breast, unspecified")
    p.back_pain()
    p.no_alert("C50.9 is not an ICD-9-CM code: not eligible")
    return f


SECTION = Section(
    "§8 Clarifications (v1.1)",
    (
        fx47_v11_calendar_day_windows,
        fx48_v11_future_records_ignored,
        fx49_v11_calcium_limit_mg_dl,
        fx50_v11_latest_calcium_per_kind,
        fx51_v11_nearest_albumin,
        fx52_v11_unitless_reference_high,
        fx53_v11_bone_specific_alp,
        fx54_v11_absent_symptoms,
        fx55_v11_status_by_code,
        fx56_v11_partial_retraction_state,
        fx57_v11_code_systems,
    ),
)
