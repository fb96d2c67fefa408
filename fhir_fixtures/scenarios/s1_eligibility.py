"""§1 Eligibility: who may get an alert at all.

A patient is eligible with one BREAST_CANCER Condition that is not refuted or entered in error,
in any code system of the value set (01-04); family history, refuted, entered-in-error or
text-only Conditions do not count (05-08). KNOWN_BONE_METASTASIS suppresses new-back-pain,
rising-calcium, rising-alp and grade-1 hypercalcemia (09), never suspected MSCC or hypercalcemia
of grade 2 or more (10), and only its own codes suppress (11).
"""

from __future__ import annotations

from .builders import (
    BASELINE_DATES,
    BC_ONSET,
    ICD9CM,
    ICD10CM,
    METS_ONSET,
    SCT,
    Fixture,
    Section,
)


def fx01_bc_snomed() -> Fixture:
    f = Fixture(
        1,
        "bc-snomed",
        "Eligibility by the SNOMED BREAST_CANCER codes 254837009, 429087003 and 372064008: "
        "each patient has that Condition (2019) and one backache 12 days before asOf, so "
        "each gets an urgent new-back-pain alert.",
    )
    for suffix, code, display in (
        ("", "254837009", "Malignant neoplasm of breast"),
        ("b", "429087003", "History of malignant neoplasm of breast"),
        ("c", "372064008", "Malignant neoplasm of female breast"),
    ):
        p = f.patient(suffix)
        p.breast_cancer(
            SCT, code, display, clinical="resolved" if code == "429087003" else "remission"
        )
        p.new_back_pain_alert(p.back_pain(), note=f"breast cancer coded SNOMED {code}")
    return f


def fx02_bc_icd10cm_c50() -> Fixture:
    f = Fixture(
        2,
        "bc-icd10cm-c50",
        "Eligibility by ICD-10-CM C50 codes, with and without the dot (C50.912, C50912, "
        "C50.A1, C50.011): each patient gets an urgent new-back-pain alert from one "
        "backache 12 days before asOf.",
    )
    for suffix, code, display in (
        ("", "C50.912", "Malignant neoplasm of unspecified site of left female breast"),
        ("b", "C50912", "Malignant neoplasm of unspecified site of left female breast"),
        ("c", "C50.A1", "Malignant inflammatory neoplasm of right breast"),
        ("d", "C50.011", "Malignant neoplasm of nipple and areola, right female breast"),
    ):
        p = f.patient(suffix)
        p.breast_cancer(ICD10CM, code, display)
        p.new_back_pain_alert(p.back_pain(), note=f"breast cancer coded ICD-10-CM {code}")
    return f


def fx03_bc_personal_history_z_codes() -> Fixture:
    f = Fixture(
        3,
        "bc-personal-history-z-codes",
        "Eligibility by ICD-10-CM personal-history codes Z85.3, Z853 (undotted) and Z86.000: "
        "each patient gets an urgent new-back-pain alert from one backache 12 days before "
        "asOf.",
    )
    for suffix, code, display in (
        ("", "Z85.3", "Personal history of malignant neoplasm of breast"),
        ("b", "Z853", "Personal history of malignant neoplasm of breast"),
        ("c", "Z86.000", "Personal history of in-situ neoplasm of breast"),
    ):
        p = f.patient(suffix)
        p.breast_cancer(ICD10CM, code, display, clinical="resolved")
        p.new_back_pain_alert(p.back_pain(), note=f"breast cancer history coded ICD-10-CM {code}")
    return f


def fx04_bc_icd9cm() -> Fixture:
    f = Fixture(
        4,
        "bc-icd9cm",
        "Eligibility by ICD-9-CM 174.x, 175.x and V10.3 (174.9, 175.9 in a man, V10.3, and "
        "1741 undotted): each patient gets an urgent new-back-pain alert from one backache "
        "12 days before asOf.",
    )
    for suffix, code, display, gender in (
        ("", "174.9", "Malignant neoplasm of breast (female), unspecified", "female"),
        ("b", "175.9", "Malignant neoplasm of other and unspecified sites of male breast", "male"),
        ("c", "V10.3", "Personal history of malignant neoplasm of breast", "female"),
        ("d", "1741", "Malignant neoplasm of central portion of female breast", "female"),
    ):
        p = f.patient(suffix, gender=gender)
        p.breast_cancer(ICD9CM, code, display)
        p.new_back_pain_alert(p.back_pain(), note=f"breast cancer coded ICD-9-CM {code}")
    return f


def fx05_family_history_only() -> Fixture:
    f = Fixture(
        5,
        "family-history-only",
        "A family history of breast cancer (SNOMED 429740004) does not make a patient "
        "eligible: new back pain and a grade-2 calcium (12.0 mg/dL) give no alert.",
    )
    p = f.patient()
    p.condition(
        "fhx",
        SCT,
        "429740004",
        "Family history of malignant neoplasm of breast",
        onset=BC_ONSET,
        category="problem-list-item",
    )
    p.back_pain()
    p.calcium(12.0)
    p.no_alert("only 429740004 (family history): not eligible")
    return f


def fx06_bc_refuted() -> Fixture:
    f = Fixture(
        6,
        "bc-refuted",
        "A refuted breast-cancer Condition does not make a patient eligible (fx06: no "
        "alert), but one non-refuted breast-cancer Condition is enough (fx06b: urgent).",
    )
    p = f.patient()
    p.breast_cancer(verification="refuted", clinical="resolved")
    p.back_pain()
    p.no_alert("only breast-cancer Condition is refuted")
    p = f.patient("b")
    p.breast_cancer(verification="refuted", clinical="resolved")
    p.breast_cancer(
        ICD10CM, "Z85.3", "Personal history of malignant neoplasm of breast", clinical="resolved"
    )
    p.new_back_pain_alert(p.back_pain(), note="one refuted and one confirmed (Z85.3) Condition")
    return f


def fx07_bc_entered_in_error() -> Fixture:
    f = Fixture(
        7,
        "bc-entered-in-error",
        "A breast-cancer Condition entered in error does not make a patient eligible: new "
        "back pain gives no alert.",
    )
    p = f.patient()
    p.breast_cancer(verification="entered-in-error")
    p.back_pain()
    p.no_alert("only breast-cancer Condition is entered-in-error")
    return f


def fx08_no_breast_cancer() -> Fixture:
    f = Fixture(
        8,
        "no-breast-cancer",
        "Without any coded breast-cancer history, new back pain plus a calcium of 12.0 mg/dL "
        "give no alert; a Condition that says 'Breast cancer' only in text (no coding) does "
        "not count, as display text is never matched.",
    )
    p = f.patient()
    p.back_pain()
    p.calcium(12.0)
    p.no_alert("no breast-cancer Condition at all")
    p = f.patient("b")
    p.condition(
        "bc",
        None,
        None,
        None,
        onset=BC_ONSET,
        clinical="remission",
        category="problem-list-item",
        text="Breast cancer",
    )
    p.back_pain()
    p.calcium(12.0)
    p.no_alert("breast cancer only as code.text, no coding")
    return f


def fx09_known_bone_mets_suppresses() -> Fixture:
    f = Fixture(
        9,
        "known-bone-mets-suppresses",
        "With KNOWN_BONE_METASTASIS (94222008, C79.51, C79.52, ICD-9 198.5) there is no "
        "new-back-pain, rising-calcium, rising-alp or grade-1 hypercalcemia alert.",
    )
    p = f.patient()
    p.breast_cancer()
    p.bone_mets()
    p.back_pain()
    p.no_alert("94222008 + new backache: new-back-pain suppressed")
    p = f.patient("b")
    p.breast_cancer()
    p.bone_mets(ICD10CM, "C79.51", "Secondary malignant neoplasm of bone")
    p.alp(210)
    p.no_alert("C79.51 + ALP 210 U/L (> ULN 147, no baseline): rising-alp suppressed")
    p = f.patient("c")
    p.breast_cancer()
    p.bone_mets()
    for d, v in zip(BASELINE_DATES, (9.0, 9.2, 9.4), strict=True):
        p.calcium(v, effective=d)
    p.calcium(10.3)
    p.no_alert("94222008 + calcium 10.3 vs baseline median 9.2 (+12%): rising-calcium suppressed")
    p = f.patient("d")
    p.breast_cancer()
    p.bone_mets(ICD10CM, "C79.51", "Secondary malignant neoplasm of bone")
    p.calcium(11.0)
    p.no_alert("C79.51 + calcium 11.0 mg/dL = CTCAE grade 1: below grade 2, suppressed")
    p = f.patient("e")
    p.breast_cancer()
    p.bone_mets(ICD10CM, "C79.52", "Secondary malignant neoplasm of bone marrow")
    p.back_pain()
    p.no_alert("C79.52 + new backache: new-back-pain suppressed")
    p = f.patient("f")
    p.breast_cancer()
    p.bone_mets(ICD9CM, "198.5", "Secondary malignant neoplasm of bone and bone marrow")
    p.back_pain()
    p.no_alert("ICD-9-CM 198.5 + new backache: new-back-pain suppressed")
    return f


def fx10_known_bone_mets_still_alerts() -> Fixture:
    f = Fixture(
        10,
        "known-bone-mets-still-alerts",
        "With known bone metastasis, hypercalcemia of grade 2 or more and suspected MSCC "
        "still alert: calcium 12.0 mg/dL (grade 2) -> asap; cord compression 4 days ago -> "
        "stat; calcium 13.0 (grade 3) with new back pain -> stat with hypercalcemia only.",
    )
    p = f.patient()
    p.breast_cancer()
    p.bone_mets()
    ca = p.calcium(12.0)
    p.alert("asap", ["hypercalcemia"], evidence=[ca], note="12.0 mg/dL: grade 2 (>11.5-12.5)")
    p = f.patient("b")
    p.breast_cancer()
    p.bone_mets(ICD10CM, "C79.51", "Secondary malignant neoplasm of bone")
    neuro = p.neuro()
    p.alert("stat", ["suspected-mscc"], evidence=[neuro], note="G95.20 4 days before asOf")
    p = f.patient("c")
    p.breast_cancer()
    p.bone_mets()
    p.back_pain()
    ca = p.calcium(13.0)
    p.alert(
        "stat",
        ["hypercalcemia"],
        evidence=[ca],
        note="13.0 mg/dL: grade 3 (>12.5-13.5); the backache gives no finding (mets known), "
        "so no combination either",
    )
    return f


def fx11_other_metastasis_not_bone() -> Fixture:
    f = Fixture(
        11,
        "other-metastasis-not-bone",
        "Only KNOWN_BONE_METASTASIS codes suppress: brain metastasis C79.31 or a refuted "
        "94222008 leave new back pain alerting (urgent).",
    )
    p = f.patient()
    p.breast_cancer()
    p.condition(
        "mets",
        ICD10CM,
        "C79.31",
        "Secondary malignant neoplasm of brain",
        onset=METS_ONSET,
        category="problem-list-item",
    )
    p.new_back_pain_alert(p.back_pain(), note="C79.31 is not in KNOWN_BONE_METASTASIS")
    p = f.patient("b")
    p.breast_cancer()
    p.bone_mets(verification="refuted")
    p.new_back_pain_alert(p.back_pain(), note="94222008 refuted: does not count")
    return f


SECTION = Section(
    "§1 Eligibility: breast-cancer history and known bone metastasis",
    (
        fx01_bc_snomed,
        fx02_bc_icd10cm_c50,
        fx03_bc_personal_history_z_codes,
        fx04_bc_icd9cm,
        fx05_family_history_only,
        fx06_bc_refuted,
        fx07_bc_entered_in_error,
        fx08_no_breast_cancer,
        fx09_known_bone_mets_suppresses,
        fx10_known_bone_mets_still_alerts,
        fx11_other_metastasis_not_bone,
    ),
)
