"""§3 Value sets: every BACK_PAIN code outside the high spine (12-14) and NEURO_DEFICIT in each
code system (23), dotted and undotted. The BREAST_CANCER codes are in §1, the
BACK_PAIN_HIGH_SPINE codes with their red flag in §5 (s5_symptoms).
"""

from __future__ import annotations

from .builders import ICD9CM, ICD10CM, NEURO_DATE, SCT, Fixture, Section


def fx12_new_back_pain_snomed() -> Fixture:
    f = Fixture(
        12,
        "new-back-pain-snomed",
        "New back pain by SNOMED Condition (161891005 backache, 279039007 low back pain), "
        "12 days before asOf, after a 2019 breast cancer and with no earlier back pain -> "
        "urgent new-back-pain, no red flag.",
    )
    for suffix, code, display in (
        ("", "161891005", "Backache"),
        ("b", "279039007", "Low back pain"),
    ):
        p = f.patient(suffix)
        p.breast_cancer()
        p.new_back_pain_alert(p.back_pain(SCT, code, display), note=f"SNOMED {code}")
    return f


def fx13_new_back_pain_icd10cm() -> Fixture:
    f = Fixture(
        13,
        "new-back-pain-icd10cm",
        "New back pain by each non-high-spine ICD-10-CM BACK_PAIN code (M54.5, M54.50, "
        "M54.51, M54.59, M5459 undotted, M54.89, M54.9, G89.3), as a Condition 12 days "
        "before asOf -> urgent new-back-pain, no red flag.",
    )
    for suffix, code, display in (
        ("", "M54.5", "Low back pain"),
        ("b", "M54.50", "Low back pain, unspecified"),
        ("c", "M54.51", "Vertebrogenic low back pain"),
        ("d", "M54.59", "Other low back pain"),
        ("e", "M5459", "Other low back pain"),
        ("f", "M54.89", "Other dorsalgia"),
        ("g", "M54.9", "Dorsalgia, unspecified"),
        ("h", "G89.3", "Neoplasm related pain (acute) (chronic)"),
    ):
        p = f.patient(suffix)
        p.breast_cancer()
        p.new_back_pain_alert(p.back_pain(ICD10CM, code, display), note=f"ICD-10-CM {code}")
    return f


def fx14_new_back_pain_icd9cm() -> Fixture:
    f = Fixture(
        14,
        "new-back-pain-icd9cm",
        "New back pain by each non-high-spine ICD-9-CM BACK_PAIN code (724.2, 724.5, 7245 "
        "undotted), as a Condition 12 days before asOf -> urgent new-back-pain.",
    )
    for suffix, code, display in (
        ("", "724.2", "Lumbago"),
        ("b", "724.5", "Backache, unspecified"),
        ("c", "7245", "Backache, unspecified"),
    ):
        p = f.patient(suffix)
        p.breast_cancer()
        p.new_back_pain_alert(p.back_pain(ICD9CM, code, display), note=f"ICD-9-CM {code}")
    return f


def fx23_neuro_deficit_codes() -> Fixture:
    f = Fixture(
        23,
        "neuro-deficit-codes",
        "NEURO_DEFICIT across code systems within 14 days -> stat suspected-mscc: SNOMED "
        "71286001, ICD-9-CM 344.61, ICD-10-CM M54.16 (inside M54.10-M54.18), R33.9 as "
        "Observation value; R20.3 (not in the set) -> no alert.",
    )
    for suffix, system, code, display in (
        ("", SCT, "71286001", "Compression of spinal cord"),
        ("b", ICD9CM, "344.61", "Cauda equina syndrome with neurogenic bladder"),
        ("c", ICD10CM, "M54.16", "Radiculopathy, lumbar region"),
    ):
        p = f.patient(suffix)
        p.breast_cancer()
        neuro = p.neuro(system, code, display)
        p.alert("stat", ["suspected-mscc"], red_flags=[], evidence=[neuro], note=code)
    p = f.patient("d")
    p.breast_cancer()
    obs = p.symptom(
        "neuro", ICD10CM, "R33.9", "Retention of urine, unspecified", effective=NEURO_DATE
    )
    p.alert(
        "stat",
        ["suspected-mscc"],
        red_flags=[],
        evidence=[obs],
        note="R33.9 as Observation 75325-1 valueCodeableConcept",
    )
    p = f.patient("e")
    p.breast_cancer()
    p.neuro(ICD10CM, "R20.3", "Hyperesthesia")
    p.no_alert("R20.3 is not in NEURO_DEFICIT (only R20.0-R20.2)")
    return f


SECTION = Section(
    "§3 Value sets: BACK_PAIN and NEURO_DEFICIT codes in each code system",
    (
        fx12_new_back_pain_snomed,
        fx13_new_back_pain_icd10cm,
        fx14_new_back_pain_icd9cm,
        fx23_neuro_deficit_codes,
    ),
)
