"""§5 Findings from calcium: hypercalcemia by CTCAE v5 grade on the latest recent value (total,
Payne-corrected, corrected or ionized, against the default or the Observation's own upper limit)
and rising-calcium against the median baseline 31-365 days before.
"""

from __future__ import annotations

from .builders import BASELINE_DATES, Fixture, Section

IONIZED_BLOOD = "Calcium.ionized [Moles/volume] in Blood"


def fx24_hypercalcemia_grade1() -> Fixture:
    f = Fixture(
        24,
        "hypercalcemia-grade1",
        "Total calcium above the ULN 10.5 mg/dL up to 11.5 is CTCAE grade 1 -> urgent: "
        "17861-6 11.0 mg/dL, and exactly 11.5 mg/dL (the top of grade 1).",
    )
    p = f.patient()
    p.breast_cancer()
    ca = p.calcium(11.0)
    p.alert("urgent", ["hypercalcemia"], red_flags=[], evidence=[ca], note="11.0 mg/dL: grade 1")
    p = f.patient("b")
    p.breast_cancer()
    ca = p.calcium(11.5)
    p.alert(
        "urgent",
        ["hypercalcemia"],
        red_flags=[],
        evidence=[ca],
        note="11.5 mg/dL: grade 1 (grade 2 starts above 11.5)",
    )
    return f


def fx25_hypercalcemia_grade2() -> Fixture:
    f = Fixture(
        25,
        "hypercalcemia-grade2",
        "Total calcium > 11.5-12.5 mg/dL is grade 2 -> asap: 17861-6 12.0 mg/dL; 2000-8 "
        "3.00 mmol/L = 3.00 x 4.008 = 12.02 mg/dL.",
    )
    p = f.patient()
    p.breast_cancer()
    ca = p.calcium(12.0)
    p.alert("asap", ["hypercalcemia"], red_flags=[], evidence=[ca], note="12.0 mg/dL: grade 2")
    p = f.patient("b")
    p.breast_cancer()
    ca = p.calcium(3.00, "mmol/L")
    p.alert(
        "asap",
        ["hypercalcemia"],
        red_flags=[],
        evidence=[ca],
        note="3.00 mmol/L x 4.008 = 12.02 mg/dL: grade 2",
    )
    return f


def fx26_hypercalcemia_grade3() -> Fixture:
    f = Fixture(
        26,
        "hypercalcemia-grade3",
        "Total calcium > 12.5-13.5 mg/dL is grade 3 -> stat: whole-blood 49765-1 13.0 mg/dL; "
        "2000-8 3.25 mmol/L = 13.03 mg/dL.",
    )
    p = f.patient()
    p.breast_cancer()
    ca = p.calcium(13.0, loinc="49765-1", display="Calcium [Mass/volume] in Blood")
    p.alert(
        "stat", ["hypercalcemia"], red_flags=[], evidence=[ca], note="49765-1 13.0 mg/dL: grade 3"
    )
    p = f.patient("b")
    p.breast_cancer()
    ca = p.calcium(3.25, "mmol/L")
    p.alert(
        "stat",
        ["hypercalcemia"],
        red_flags=[],
        evidence=[ca],
        note="3.25 mmol/L x 4.008 = 13.03 mg/dL: grade 3",
    )
    return f


def fx27_hypercalcemia_grade4() -> Fixture:
    f = Fixture(
        27,
        "hypercalcemia-grade4",
        "Total calcium > 13.5 mg/dL is grade 4 -> stat: 17861-6 14.2 mg/dL; 2000-8 "
        "3.60 mmol/L = 14.43 mg/dL.",
    )
    p = f.patient()
    p.breast_cancer()
    ca = p.calcium(14.2)
    p.alert("stat", ["hypercalcemia"], red_flags=[], evidence=[ca], note="14.2 mg/dL: grade 4")
    p = f.patient("b")
    p.breast_cancer()
    ca = p.calcium(3.60, "mmol/L")
    p.alert(
        "stat",
        ["hypercalcemia"],
        red_flags=[],
        evidence=[ca],
        note="3.60 mmol/L x 4.008 = 14.43 mg/dL: grade 4",
    )
    return f


def fx28_hypercalcemia_latest_recent() -> Fixture:
    f = Fixture(
        28,
        "hypercalcemia-latest-recent",
        "Only the latest calcium counts and it must be recent: 12.5 mg/dL 47 days before "
        "asOf -> no alert; 12.0 mg/dL followed by a normal 9.8 mg/dL -> no alert.",
    )
    p = f.patient()
    p.breast_cancer()
    p.calcium(12.5, effective="2026-04-15T08:00:00Z")
    p.no_alert("only calcium is 47 days old: not recent")
    p = f.patient("b")
    p.breast_cancer()
    p.calcium(12.0, effective="2026-05-10T08:00:00Z")
    p.calcium(9.8)
    p.no_alert("12.0 on 2026-05-10 then 9.8 on 2026-05-25: the latest is normal and < 10.0")
    return f


def fx29_albumin_correction() -> Fixture:
    f = Fixture(
        29,
        "albumin-correction",
        "Payne correction Ca + 0.8 x (4.0 - albumin g/dL) applies when an ALBUMIN result "
        "lies within 2 days of the calcium: 10.2 + 0.8 x (4.0 - 2.8) = 11.16 -> grade 1 "
        "urgent (albumin 1 day before or after); same values 3 days apart -> no alert.",
    )
    p = f.patient()
    p.breast_cancer()
    p.albumin(2.8, effective="2026-05-24T08:00:00Z")
    ca = p.calcium(10.2)
    p.alert(
        "urgent",
        ["hypercalcemia"],
        red_flags=[],
        evidence=[ca],
        note="Ca 10.2 mg/dL (normal), albumin 1751-7 2.8 g/dL 1 day before: "
        "10.2 + 0.8 x 1.2 = 11.16 mg/dL > 10.5, grade 1; the albumin supports, the calcium is "
        "the evidence",
    )
    p = f.patient("b")
    p.breast_cancer()
    p.albumin(2.8, effective="2026-05-22T08:00:00Z")
    p.calcium(10.2)
    p.no_alert("albumin 3 days before the calcium: no correction; 10.2 <= 10.5, no baseline")
    p = f.patient("c")
    p.breast_cancer()
    p.albumin(28, "g/L", loinc="2862-1")
    ca = p.calcium(2.55, "mmol/L")
    p.alert(
        "urgent",
        ["hypercalcemia"],
        red_flags=[],
        evidence=[ca],
        note="Ca 2.55 mmol/L = 10.22 mg/dL, albumin 2862-1 28 g/L = 2.8 g/dL same time: "
        "10.22 + 0.96 = 11.18 mg/dL, grade 1",
    )
    p = f.patient("d")
    p.breast_cancer()
    ca = p.calcium(10.2)
    p.albumin(2.8, loinc="61151-7", effective="2026-05-26T08:00:00Z")
    p.alert(
        "urgent",
        ["hypercalcemia"],
        red_flags=[],
        evidence=[ca],
        note="albumin 61151-7 2.8 g/dL 1 day AFTER the calcium: 11.16 mg/dL, grade 1",
    )
    p = f.patient("e")
    p.breast_cancer()
    p.albumin(4.6)
    p.calcium(10.8)
    p.no_alert(
        "Ca 10.8 with albumin 4.6 g/dL: 10.8 + 0.8 x (4.0 - 4.6) = 10.32 <= 10.5 "
        "(the correction also lowers); no baseline"
    )
    return f


def fx30_corrected_calcium_code() -> Fixture:
    f = Fixture(
        30,
        "corrected-calcium-code",
        "A CALCIUM_CORRECTED result is used as is: 29265-6 2.95 mmol/L = 11.82 mg/dL -> "
        "grade 2 asap even with albumin 2.0 g/dL alongside (correcting again would give "
        "13.42 = grade 3); 46099-8 11.2 mg/dL -> grade 1 urgent.",
    )
    p = f.patient()
    p.breast_cancer()
    p.albumin(2.0)
    ca = p.lab(
        "ca",
        "29265-6",
        "Calcium [Moles/volume] corrected for albumin in Serum or Plasma",
        2.95,
        "mmol/L",
    )
    p.alert(
        "asap",
        ["hypercalcemia"],
        red_flags=[],
        evidence=[ca],
        note="2.95 x 4.008 = 11.82 mg/dL: grade 2; the albumin is not used and not evidence",
    )
    p = f.patient("b")
    p.breast_cancer()
    ca = p.lab(
        "ca",
        "46099-8",
        "Calcium corrected for albumin [Mass/volume] in Serum or Plasma",
        11.2,
        "mg/dL",
    )
    p.alert("urgent", ["hypercalcemia"], red_flags=[], evidence=[ca], note="11.2 mg/dL: grade 1")
    return f


def fx31_ionized_calcium() -> Fixture:
    f = Fixture(
        31,
        "ionized-calcium",
        "Ionized calcium is judged against its own limits (ULN 1.32 mmol/L; grades >ULN-1.5, "
        ">1.5-1.6, >1.6-1.8, >1.8): 1.40 -> urgent, 1.55 -> asap, 1.70 -> stat, 1.25 -> "
        "none, 17864-0 6.2 mg/dL = 1.547 mmol/L -> asap, 1995-0 1.45 -> urgent.",
    )
    for suffix, value, prio in (("", 1.55, "asap"), ("b", 1.40, "urgent"), ("c", 1.70, "stat")):
        p = f.patient(suffix)
        p.breast_cancer()
        ca = p.lab("ca", "1994-3", IONIZED_BLOOD, value, "mmol/L")
        p.alert(
            prio, ["hypercalcemia"], red_flags=[], evidence=[ca], note=f"ionized {value} mmol/L"
        )
    p = f.patient("d")
    p.breast_cancer()
    p.lab("ca", "1994-3", IONIZED_BLOOD, 1.25, "mmol/L")
    p.no_alert("ionized 1.25 mmol/L <= 1.32")
    p = f.patient("e")
    p.breast_cancer()
    ca = p.lab(
        "ca",
        "17864-0",
        "Calcium.ionized [Mass/volume] in Serum or Plasma by Ion-selective membrane electrode "
        "(ISE)",
        6.2,
        "mg/dL",
    )
    p.alert(
        "asap",
        ["hypercalcemia"],
        red_flags=[],
        evidence=[ca],
        note="ionized 6.2 mg/dL / 4.008 = 1.547 mmol/L: grade 2 (as total calcium it would be "
        "normal)",
    )
    p = f.patient("f")
    p.breast_cancer()
    ca = p.lab("ca", "1995-0", "Calcium.ionized [Moles/volume] in Serum or Plasma", 1.45, "mmol/L")
    p.alert(
        "urgent",
        ["hypercalcemia"],
        red_flags=[],
        evidence=[ca],
        note="ionized 1.45 mmol/L: grade 1",
    )
    return f


def fx32_reference_range_override() -> Fixture:
    f = Fixture(
        32,
        "reference-range-override",
        "referenceRange.high overrides the default ULN when convertible: Ca 10.4 with high "
        "10.2 mg/dL or 2.55 mmol/L (10.22) -> urgent; Ca 10.8 with high 11.0 -> none; "
        "ALP 140 with high 120 U/L -> routine; a high in 'mg' is unusable -> default 10.5.",
    )
    p = f.patient()
    p.breast_cancer()
    ca = p.calcium(10.4, ref_high=(10.2, "mg/dL", "mg/dL"))
    p.alert(
        "urgent",
        ["hypercalcemia"],
        red_flags=[],
        evidence=[ca],
        note="10.4 > own ULN 10.2 (<= 11.5): grade 1",
    )
    p = f.patient("b")
    p.breast_cancer()
    p.calcium(10.8, ref_high=(11.0, "mg/dL", "mg/dL"))
    p.no_alert("10.8 <= own ULN 11.0 (the default 10.5 would have alerted); no baseline")
    p = f.patient("c")
    p.breast_cancer()
    alp = p.alp(140, ref_high=(120, "U/L", "U/L"))
    p.alert(
        "routine",
        ["rising-alp"],
        red_flags=[],
        evidence=[alp],
        note="ALP 140 > own ULN 120 (default 147 would not), no baseline",
    )
    p = f.patient("d")
    p.breast_cancer()
    ca = p.calcium(10.4, ref_high=(2.55, "mmol/L", "mmol/L"))
    p.alert(
        "urgent",
        ["hypercalcemia"],
        red_flags=[],
        evidence=[ca],
        note="ULN 2.55 mmol/L x 4.008 = 10.22 mg/dL < 10.4: grade 1",
    )
    p = f.patient("e")
    p.breast_cancer()
    p.calcium(10.4, ref_high=(10.1, "mg", "mg"))
    p.no_alert("referenceRange.high 10.1 mg (a mass) cannot be converted: default 10.5 applies")
    return f


def fx33_rising_calcium() -> Fixture:
    f = Fixture(
        33,
        "rising-calcium",
        "Rising calcium (latest <= ULN, >= 10.0 mg/dL, >= 10% above the median of values "
        "31-365 days earlier) -> routine: 10.3 vs median 9.2 (+12.0%); 2.58 vs 2.30 mmol/L "
        "(+12.2%, 10.34 mg/dL); 10.2 mg/dL vs 2.30 mmol/L = 9.22 mg/dL (+10.6%).",
    )
    p = f.patient()
    p.breast_cancer()
    for d, v in zip(BASELINE_DATES, (9.0, 9.4, 9.2), strict=True):
        p.calcium(v, effective=d)
    ca = p.calcium(10.3)
    p.alert(
        "routine",
        ["rising-calcium"],
        red_flags=[],
        evidence=[ca],
        note="baseline 9.0/9.4/9.2 -> median 9.2; 10.3 / 9.2 = 1.120; baselines are history, "
        "not evidence",
    )
    p = f.patient("b")
    p.breast_cancer()
    for d, v in zip(BASELINE_DATES, (2.25, 2.30, 2.35), strict=True):
        p.calcium(v, "mmol/L", effective=d)
    ca = p.calcium(2.58, "mmol/L")
    p.alert(
        "routine",
        ["rising-calcium"],
        red_flags=[],
        evidence=[ca],
        note="2.58 / 2.30 = 1.122; 2.58 mmol/L = 10.34 mg/dL (>= 10.0, <= 10.5)",
    )
    p = f.patient("c")
    p.breast_cancer()
    for d, v in zip(BASELINE_DATES, (2.25, 2.30, 2.35), strict=True):
        p.calcium(v, "mmol/L", effective=d)
    ca = p.calcium(10.2)
    p.alert(
        "routine",
        ["rising-calcium"],
        red_flags=[],
        evidence=[ca],
        note="baseline in mmol/L (median 2.30 = 9.218 mg/dL), latest 10.2 mg/dL: 1.107",
    )
    return f


def fx34_rising_calcium_negative() -> Fixture:
    f = Fixture(
        34,
        "rising-calcium-negative",
        "No rising-calcium: 10.1 vs median 9.5 is only +6.3%; 9.9 vs 8.8 is +12.5% but "
        "below 10.0 mg/dL; 10.3 with earlier values only 15 and 400 days before has no "
        "baseline.",
    )
    p = f.patient()
    p.breast_cancer()
    for d, v in zip(BASELINE_DATES, (9.4, 9.5, 9.6), strict=True):
        p.calcium(v, effective=d)
    p.calcium(10.1)
    p.no_alert("10.1 / 9.5 = 1.063 < 1.10")
    p = f.patient("b")
    p.breast_cancer()
    for d, v in zip(BASELINE_DATES, (8.7, 8.8, 8.9), strict=True):
        p.calcium(v, effective=d)
    p.calcium(9.9)
    p.no_alert("9.9 / 8.8 = 1.125 but 9.9 < 10.0 mg/dL")
    p = f.patient("c")
    p.breast_cancer()
    p.calcium(9.0, effective="2025-04-20T08:00:00Z")
    p.calcium(9.0, effective="2026-05-10T08:00:00Z")
    p.calcium(10.3)
    p.no_alert("earlier values 400 and 15 days before the latest: none in 31-365, no baseline")
    return f


SECTION = Section(
    "§5 Findings: hypercalcemia (CTCAE grades) and rising-calcium",
    (
        fx24_hypercalcemia_grade1,
        fx25_hypercalcemia_grade2,
        fx26_hypercalcemia_grade3,
        fx27_hypercalcemia_grade4,
        fx28_hypercalcemia_latest_recent,
        fx29_albumin_correction,
        fx30_corrected_calcium_code,
        fx31_ionized_calcium,
        fx32_reference_range_override,
        fx33_rising_calcium,
        fx34_rising_calcium_negative,
    ),
)
