"""§2 What counts as a record.

A symptom counts as a Condition or as an Observation, by its code or its value, unless a
valueBoolean says it is absent (15); records are dated by their clinical date, never by when
they arrived (19, 46); an Observation counts only with status final, amended, corrected or
preliminary (42, 43).
"""

from __future__ import annotations

from .builders import BP_DATE, ICD9CM, ICD10CM, LAB_DATE, SCT, Fixture, Section


def fx15_new_back_pain_observation() -> Fixture:
    f = Fixture(
        15,
        "new-back-pain-observation",
        "Back pain recorded as an Observation counts: as valueCodeableConcept (SNOMED, "
        "ICD-10-CM, ICD-9-CM) or as Observation.code with valueBoolean true -> urgent; "
        "valueBoolean false (absent) or a knee-pain code -> no alert.",
    )
    for suffix, system, code, display in (
        ("", SCT, "161891005", "Backache"),
        ("b", ICD10CM, "M54.50", "Low back pain, unspecified"),
        ("c", ICD9CM, "724.2", "Lumbago"),
    ):
        p = f.patient(suffix)
        p.breast_cancer()
        obs = p.symptom("bp", system, code, display)
        p.new_back_pain_alert(obs, note=f"Observation 75325-1 valueCodeableConcept {code}")
    p = f.patient("d")
    p.breast_cancer()
    obs = p.symptom("bp", SCT, "279039007", "Low back pain", value_boolean=True)
    p.new_back_pain_alert(obs, note="Observation.code 279039007, valueBoolean true")
    p = f.patient("e")
    p.breast_cancer()
    p.symptom("bp", SCT, "279039007", "Low back pain", value_boolean=False)
    p.no_alert("Observation.code 279039007 with valueBoolean false: back pain absent")
    p = f.patient("f")
    p.breast_cancer()
    p.condition("knee", ICD10CM, "M25.561", "Pain in right knee", onset=BP_DATE)
    p.no_alert("M25.561 knee pain is not BACK_PAIN")
    return f


def fx19_back_pain_clinical_dates() -> Fixture:
    f = Fixture(
        19,
        "back-pain-clinical-dates",
        "Back pain is judged by its clinical date, not its arrival: onset or effective "
        "date 60 days before asOf but recorded/issued 2 days before -> no alert; "
        "recordedDate only, or onsetPeriod.start, 12 days before -> urgent.",
    )
    p = f.patient()
    p.breast_cancer()
    p.back_pain(onset="2026-04-02T09:00:00Z", recorded="2026-05-30T09:00:00Z")
    p.no_alert("Condition onset 2026-04-02 (60 days), recordedDate 2026-05-30: not recent")
    p = f.patient("b")
    p.breast_cancer()
    p.symptom(
        "bp",
        SCT,
        "161891005",
        "Backache",
        effective="2026-04-02T09:00:00Z",
        issued="2026-05-30T09:00:00Z",
    )
    p.no_alert("Observation effective 2026-04-02 (60 days), issued 2026-05-30: not recent")
    p = f.patient("c")
    p.breast_cancer()
    p.new_back_pain_alert(
        p.back_pain(onset=None, recorded=BP_DATE),
        note="no onset[x]: recordedDate 2026-05-20 is the clinical date",
    )
    p = f.patient("d")
    p.breast_cancer()
    p.new_back_pain_alert(
        p.back_pain(onset=None, onset_period_start=BP_DATE, recorded=None),
        note="onsetPeriod.start 2026-05-20",
    )
    return f


def fx42_lab_entered_in_error() -> Fixture:
    f = Fixture(
        42,
        "lab-entered-in-error",
        "Lab results entered in error are ignored: calcium 12.0 or ALP 400 entered-in-error "
        "-> no alert; a valid 12.0 followed by an entered-in-error 9.5 -> the 12.0 is the "
        "latest -> asap.",
    )
    p = f.patient()
    p.breast_cancer()
    p.calcium(12.0, status="entered-in-error")
    p.no_alert("only calcium is entered-in-error")
    p = f.patient("b")
    p.breast_cancer()
    p.alp(400, status="entered-in-error")
    p.no_alert("only ALP is entered-in-error")
    p = f.patient("c")
    p.breast_cancer()
    ca = p.calcium(12.0, effective="2026-05-20T08:00:00Z")
    p.calcium(9.5, status="entered-in-error")
    p.alert(
        "asap",
        ["hypercalcemia"],
        red_flags=[],
        evidence=[ca],
        note="12.0 on 2026-05-20 final; 9.5 on 2026-05-25 entered-in-error does not count",
    )
    return f


def fx43_observation_status() -> Fixture:
    f = Fixture(
        43,
        "observation-status",
        "Observation status: cancelled or registered calcium 13.0 -> no alert; "
        "preliminary, amended or corrected calcium 12.0 -> asap (grade 2).",
    )
    for suffix, status in (("", "cancelled"), ("b", "registered")):
        p = f.patient(suffix)
        p.breast_cancer()
        p.calcium(13.0, status=status)
        p.no_alert(f"calcium status {status}: does not count")
    for suffix, status in (("c", "preliminary"), ("d", "amended"), ("e", "corrected")):
        p = f.patient(suffix)
        p.breast_cancer()
        ca = p.calcium(12.0, status=status)
        p.alert(
            "asap",
            ["hypercalcemia"],
            red_flags=[],
            evidence=[ca],
            note=f"calcium status {status}: counts",
        )
    return f


def fx46_observation_dates() -> Fixture:
    f = Fixture(
        46,
        "observation-dates",
        "An Observation's clinical date is effective[x] (dateTime or Period.start) else "
        "issued: calcium 12.0 with effectivePeriod.start or only issued 7 days before asOf "
        "-> asap; effectivePeriod.start 60 days before but issued 2 days before -> none.",
    )
    p = f.patient()
    p.breast_cancer()
    ca = p.calcium(12.0, effective=None, effective_period_start=LAB_DATE)
    p.alert(
        "asap",
        ["hypercalcemia"],
        red_flags=[],
        evidence=[ca],
        note="effectivePeriod.start 2026-05-25",
    )
    p = f.patient("b")
    p.breast_cancer()
    ca = p.calcium(12.0, effective=None, issued="2026-05-25T12:00:00Z")
    p.alert(
        "asap",
        ["hypercalcemia"],
        red_flags=[],
        evidence=[ca],
        note="no effective[x]; issued 2026-05-25",
    )
    p = f.patient("c")
    p.breast_cancer()
    p.calcium(
        12.0,
        effective=None,
        effective_period_start="2026-04-02T08:00:00Z",
        issued="2026-05-30T12:00:00Z",
    )
    p.no_alert(
        "effectivePeriod.start 2026-04-02 (60 days) wins over issued 2026-05-30: "
        "late-arriving old result"
    )
    return f


SECTION = Section(
    "§2 What counts as a record: status, clinical dates, symptom Observations",
    (
        fx15_new_back_pain_observation,
        fx19_back_pain_clinical_dates,
        fx42_lab_entered_in_error,
        fx43_observation_status,
        fx46_observation_dates,
    ),
)
