#!/usr/bin/env python3
"""Build the clinical scenario fixtures of fhir-alerts (rule set v1).

Writes, next to this file, one FHIR R4 transaction Bundle ``NN-name.json`` and one expectation
``NN-name.expect.json`` per scenario, plus ``README.md``. The JSON files are the contract that
tests read; this script only keeps them consistent. Edit a scenario here and run::

    .venv/bin/python fhir_fixtures/build_fixtures.py

Every expected outcome below is worked out by hand from ``/work/shared/spec/clinical-rules.md``
(rule set v1 defaults); the arithmetic is in each scenario's ``description`` or patient ``note``.
All scenarios are judged at ``AS_OF`` and date their data relative to it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
AS_OF = "2026-06-01T12:00:00Z"
BASE = "https://example.org/fhir"

SCT = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD9CM = "http://hl7.org/fhir/sid/icd-9-cm"
ICD10 = "http://hl7.org/fhir/sid/icd-10"  # WHO ICD-10
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"

FINDINGS = ("new-back-pain", "suspected-mscc", "hypercalcemia", "rising-calcium", "rising-alp")
PRIORITIES = ("routine", "urgent", "asap", "stat")
RED_FLAGS = ("high-spine-back-pain", "weight-loss", "progressive-pain", "ggt-raised")

# Default clinical dates (asOf = 2026-06-01T12:00:00Z).
BC_ONSET = "2019-04-10T10:00:00Z"  # breast cancer diagnosed 7 years before asOf
METS_ONSET = "2025-11-03T10:00:00Z"  # known bone metastasis, 210 days before asOf
BP_DATE = "2026-05-20T09:00:00Z"  # back pain: 12 days before asOf (recent)
NEURO_DATE = "2026-05-28T09:00:00Z"  # neuro deficit: 4 days before asOf (within 14 days)
LAB_DATE = "2026-05-25T08:00:00Z"  # latest lab: 7 days before asOf (recent)
# Baseline dates: 257, 166 and 76 days before LAB_DATE, all inside its 31-365 day window.
BASELINE_DATES = ("2025-09-10T08:00:00Z", "2025-12-10T08:00:00Z", "2026-03-10T08:00:00Z")

Json = dict[str, Any]

GIVEN = (
    "Ada",
    "Beatrix",
    "Clara",
    "Dorothea",
    "Edith",
    "Frieda",
    "Greta",
    "Hilde",
    "Ines",
    "Johanna",
    "Karin",
    "Lotte",
    "Marta",
    "Nora",
    "Olga",
    "Paula",
    "Rosa",
    "Selma",
    "Thea",
    "Ulla",
    "Vera",
    "Wilma",
    "Yvonne",
    "Zora",
)
FAMILY = (
    "Ashdown",
    "Brimley",
    "Corvell",
    "Dunmore",
    "Elsworth",
    "Fairholm",
    "Grantly",
    "Hesketh",
    "Inchcombe",
    "Jessop",
    "Kettering",
    "Lowther",
    "Marchbank",
    "Northcote",
    "Ormsby",
    "Pendry",
    "Quarrington",
    "Rothwell",
    "Sallow",
    "Thackery",
    "Upcott",
    "Varley",
    "Wexcombe",
    "Yardley",
)


def coding(system: str, code: str, display: str | None = None) -> Json:
    c: Json = {"system": system, "code": code}
    if display:
        c["display"] = display
    return c


def concept(system: str, code: str, display: str | None = None) -> Json:
    cc: Json = {"coding": [coding(system, code, display)]}
    if display:
        cc["text"] = display
    return cc


def quantity(value: float, unit: str | None, ucum: str | None) -> Json:
    q: Json = {"value": value}
    if unit is not None:
        q["unit"] = unit
    if ucum is not None:
        q["system"] = UCUM
        q["code"] = ucum
    return q


class Fixture:
    """One scenario file: a transaction Bundle and its expectation."""

    def __init__(self, number: int, slug: str, description: str) -> None:
        self.number = number
        self.name = f"{number:02d}-{slug}"
        self.prefix = f"fx{number:02d}"
        self.description = description
        self.resources: list[Json] = []
        self.patients: list[PatientBuilder] = []

    def patient(
        self,
        suffix: str = "",
        *,
        gender: str = "female",
        birth: str = "1961-03-14",
    ) -> PatientBuilder:
        p = PatientBuilder(self, self.prefix + suffix, gender=gender, birth=birth)
        self.patients.append(p)
        return p

    def bundle(self) -> Json:
        entries = []
        for r in self.resources:
            url = f"{r['resourceType']}/{r['id']}"
            entries.append(
                {
                    "fullUrl": f"{BASE}/{url}",
                    "resource": r,
                    "request": {"method": "PUT", "url": url},
                }
            )
        return {"resourceType": "Bundle", "type": "transaction", "entry": entries}

    def expectation(self) -> Json:
        patients = []
        for p in self.patients:
            if p.expected is None:
                raise ValueError(f"{p.id}: no expectation")
            patients.append(p.expected)
        return {
            "fixture": self.name,
            "description": self.description,
            "asOf": AS_OF,
            "patients": patients,
        }


_name_counter = [0]


class PatientBuilder:
    def __init__(self, fixture: Fixture, pid: str, *, gender: str, birth: str) -> None:
        self.fixture = fixture
        self.id = pid
        self.ref = f"Patient/{pid}"
        self.expected: Json | None = None
        self.counters: dict[str, int] = defaultdict(int)
        n = _name_counter[0]
        _name_counter[0] += 1
        given = GIVEN[n % len(GIVEN)]
        family = FAMILY[(n * 7) % len(FAMILY)]
        if gender == "male":
            given = ("Anton", "Bruno", "Carl", "Dieter")[n % 4]
        fixture.resources.append(
            {
                "resourceType": "Patient",
                "id": pid,
                "meta": {"tag": [coding(ACT_REASON, "HTEST", "test health records")]},
                "active": True,
                "name": [{"use": "official", "family": family, "given": [given]}],
                "gender": gender,
                "birthDate": birth,
            }
        )

    def _next_id(self, kind: str) -> str:
        self.counters[kind] += 1
        return f"{self.id}-{kind}-{self.counters[kind]}"

    # ----------------------------------------------------------------- Conditions
    def condition(
        self,
        kind: str,
        system: str | None,
        code: str | None,
        display: str | None,
        *,
        onset: str | None = None,
        onset_period_start: str | None = None,
        onset_age: float | None = None,
        recorded: str | None = "same",
        clinical: str | None = "active",
        verification: str = "confirmed",
        category: str = "encounter-diagnosis",
        text: str | None = None,
        verification_system: bool = True,
    ) -> str:
        rid = self._next_id(kind)
        r: Json = {"resourceType": "Condition", "id": rid}
        # con-5: clinicalStatus SHALL NOT be present when verificationStatus is entered-in-error.
        if clinical is not None and verification != "entered-in-error":
            r["clinicalStatus"] = concept(CLINICAL, clinical)
        r["verificationStatus"] = concept(VERIFICATION, verification)
        if not verification_system:  # v1.1: status codes are read with or without system
            r["verificationStatus"] = {"coding": [{"code": verification}]}
        r["category"] = [concept(CONDITION_CATEGORY, category)]
        if system is not None and code is not None:
            r["code"] = concept(system, code, display)
        else:
            r["code"] = {"text": text or display}
        r["subject"] = {"reference": self.ref}
        if onset is not None:
            r["onsetDateTime"] = onset
        if onset_period_start is not None:
            r["onsetPeriod"] = {"start": onset_period_start}
        if onset_age is not None:
            r["onsetAge"] = {"value": onset_age, "unit": "years", "system": UCUM, "code": "a"}
        if recorded == "same":
            recorded = onset or onset_period_start
        if recorded is not None:
            r["recordedDate"] = recorded
        self.fixture.resources.append(r)
        return f"Condition/{rid}"

    def breast_cancer(
        self,
        system: str = SCT,
        code: str = "254837009",
        display: str = "Malignant neoplasm of breast",
        *,
        onset: str | None = BC_ONSET,
        recorded: str | None = "same",
        clinical: str = "remission",
        verification: str = "confirmed",
        verification_system: bool = True,
    ) -> str:
        return self.condition(
            "bc",
            system,
            code,
            display,
            onset=onset,
            recorded=recorded,
            clinical=clinical,
            verification=verification,
            category="problem-list-item",
            verification_system=verification_system,
        )

    def bone_mets(
        self,
        system: str = SCT,
        code: str = "94222008",
        display: str = "Secondary malignant neoplasm of bone",
        *,
        verification: str = "confirmed",
        verification_system: bool = True,
    ) -> str:
        return self.condition(
            "mets",
            system,
            code,
            display,
            onset=METS_ONSET,
            verification=verification,
            category="problem-list-item",
            verification_system=verification_system,
        )

    def back_pain(
        self,
        system: str = SCT,
        code: str = "161891005",
        display: str | None = "Backache",
        *,
        onset: str | None = BP_DATE,
        **kw: Any,
    ) -> str:
        return self.condition("bp", system, code, display, onset=onset, **kw)

    def neuro(
        self,
        system: str = ICD10CM,
        code: str = "G95.20",
        display: str | None = "Unspecified cord compression",
        *,
        onset: str = NEURO_DATE,
    ) -> str:
        return self.condition("neuro", system, code, display, onset=onset)

    # --------------------------------------------------------------- Observations
    def _observation(
        self,
        kind: str,
        category: str,
        code: Json,
        *,
        effective: str | None,
        effective_period_start: str | None = None,
        issued: str | None = None,
        status: str = "final",
    ) -> Json:
        rid = self._next_id(kind)
        r: Json = {
            "resourceType": "Observation",
            "id": rid,
            "status": status,
            "category": [concept(OBSERVATION_CATEGORY, category)],
            "code": code,
            "subject": {"reference": self.ref},
        }
        if effective is not None:
            r["effectiveDateTime"] = effective
        if effective_period_start is not None:
            r["effectivePeriod"] = {"start": effective_period_start}
        if issued is not None:
            r["issued"] = issued
        self.fixture.resources.append(r)
        return r

    def symptom(
        self,
        kind: str,
        system: str,
        code: str,
        display: str | None,
        *,
        effective: str | None = BP_DATE,
        issued: str | None = None,
        value_boolean: bool | None = None,
        status: str = "final",
    ) -> str:
        """A symptom Observation. With value_boolean None the symptom is the
        valueCodeableConcept of a LOINC 75325-1 'Symptom' Observation; otherwise the symptom
        is Observation.code and valueBoolean says present/absent."""
        if value_boolean is None:
            r = self._observation(
                kind,
                "exam",
                concept(LOINC, "75325-1", "Symptom"),
                effective=effective,
                issued=issued,
                status=status,
            )
            r["valueCodeableConcept"] = concept(system, code, display)
        else:
            r = self._observation(
                kind,
                "exam",
                concept(system, code, display),
                effective=effective,
                issued=issued,
                status=status,
            )
            r["valueBoolean"] = value_boolean
        return f"Observation/{r['id']}"

    def lab(
        self,
        kind: str,
        loinc: str,
        display: str,
        value: float,
        unit: str | None,
        *,
        ucum: str | None = "same",
        effective: str | None = LAB_DATE,
        effective_period_start: str | None = None,
        issued: str | None = None,
        status: str = "final",
        comparator: str | None = None,
        ref_high: tuple[float, str | None, str | None] | None = None,
    ) -> str:
        r = self._observation(
            kind,
            "laboratory",
            concept(LOINC, loinc, display),
            effective=effective,
            effective_period_start=effective_period_start,
            issued=issued,
            status=status,
        )
        q = quantity(value, unit, unit if ucum == "same" else ucum)
        if comparator is not None:
            q = {
                "value": value,
                "comparator": comparator,
                **{k: v for k, v in q.items() if k != "value"},
            }
        r["valueQuantity"] = q
        if ref_high is not None:
            hv, hu, hc = ref_high
            r["referenceRange"] = [{"high": quantity(hv, hu, hc)}]
        return f"Observation/{r['id']}"

    def calcium(self, value: float, unit: str = "mg/dL", **kw: Any) -> str:
        loinc = "17861-6" if unit == "mg/dL" else "2000-8"
        display = (
            "Calcium [Mass/volume] in Serum or Plasma"
            if unit == "mg/dL"
            else "Calcium [Moles/volume] in Serum or Plasma"
        )
        return self.lab("ca", kw.pop("loinc", loinc), kw.pop("display", display), value, unit, **kw)

    def albumin(
        self, value: float, unit: str = "g/dL", *, loinc: str = "1751-7", effective: str = LAB_DATE
    ) -> str:
        displays = {
            "1751-7": "Albumin [Mass/volume] in Serum or Plasma",
            "61151-7": "Albumin [Mass/volume] in Serum or Plasma by BCG dye binding",
            "2862-1": "Albumin [Mass/volume] in Serum or Plasma by Electrophoresis",
        }
        return self.lab("alb", loinc, displays[loinc], value, unit, effective=effective)

    def alp(self, value: float, unit: str | None = "U/L", **kw: Any) -> str:
        loinc = kw.pop("loinc", "6768-6")
        display = kw.pop(
            "display", "Alkaline phosphatase [Enzymatic activity/volume] in Serum or Plasma"
        )
        return self.lab("alp", loinc, display, value, unit, **kw)

    def ggt(self, value: float, high: float = 40) -> str:
        return self.lab(
            "ggt",
            "2324-2",
            "Gamma glutamyl transferase [Enzymatic activity/volume] in Serum or Plasma",
            value,
            "U/L",
            ref_high=(high, "U/L", "U/L"),
        )

    def pain_score(self, score: int, effective: str, *, also: Json | None = None) -> str:
        """A back pain score; `also` is one more coding of Observation.code (e.g. backache)."""
        code = concept(
            LOINC, "72514-3", "Pain severity - 0-10 verbal numeric rating [Score] - Reported"
        )
        if also is not None:
            code["coding"].append(also)
        r = self._observation("pain", "survey", code, effective=effective)
        r["valueQuantity"] = quantity(score, "{score}", "{score}")
        r["bodySite"] = concept(SCT, "77568009", "Back structure, excluding neck")
        return f"Observation/{r['id']}"

    # --------------------------------------------------------------- expectations
    def alert(
        self,
        priority: str,
        findings: list[str],
        *,
        red_flags: list[str] | None = None,
        evidence: list[str] | None = None,
        note: str = "",
    ) -> None:
        assert priority in PRIORITIES, priority
        assert all(f in FINDINGS for f in findings), findings
        e: Json = {
            "patient": self.ref,
            "alert": True,
            "priority": priority,
            "findings": findings,
            "redFlags": red_flags or [],
        }
        if red_flags is not None:
            assert all(f in RED_FLAGS for f in red_flags), red_flags
        if evidence is not None:
            e["evidence"] = evidence
        if note:
            e["note"] = note
        self.expected = e

    def no_alert(self, note: str = "") -> None:
        self.expected = {"patient": self.ref, "alert": False}
        if note:
            self.expected["note"] = note


FIXTURES: list[Fixture] = []


def fixture(number: int, slug: str, description: str) -> Fixture:
    f = Fixture(number, slug, description)
    FIXTURES.append(f)
    return f


def new_back_pain_alert(
    p: PatientBuilder, bp: str, note: str = "", red_flags: list[str] | None = None
) -> None:
    p.alert("urgent", ["new-back-pain"], red_flags=red_flags or [], evidence=[bp], note=note)


# ======================================================================== 1. eligibility
f = fixture(
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
    p.breast_cancer(SCT, code, display, clinical="resolved" if code == "429087003" else "remission")
    new_back_pain_alert(p, p.back_pain(), note=f"breast cancer coded SNOMED {code}")

f = fixture(
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
    new_back_pain_alert(p, p.back_pain(), note=f"breast cancer coded ICD-10-CM {code}")

f = fixture(
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
    new_back_pain_alert(p, p.back_pain(), note=f"breast cancer history coded ICD-10-CM {code}")

f = fixture(
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
    new_back_pain_alert(p, p.back_pain(), note=f"breast cancer coded ICD-9-CM {code}")

f = fixture(
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

f = fixture(
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
new_back_pain_alert(p, p.back_pain(), note="one refuted and one confirmed (Z85.3) Condition")

f = fixture(
    7,
    "bc-entered-in-error",
    "A breast-cancer Condition entered in error does not make a patient eligible: new "
    "back pain gives no alert.",
)
p = f.patient()
p.breast_cancer(verification="entered-in-error")
p.back_pain()
p.no_alert("only breast-cancer Condition is entered-in-error")

f = fixture(
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

# ================================================================ 2. known bone metastasis
f = fixture(
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

f = fixture(
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

f = fixture(
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
new_back_pain_alert(p, p.back_pain(), note="C79.31 is not in KNOWN_BONE_METASTASIS")
p = f.patient("b")
p.breast_cancer()
p.bone_mets(verification="refuted")
new_back_pain_alert(p, p.back_pain(), note="94222008 refuted: does not count")

# ============================================================================ 3. back pain
f = fixture(
    12,
    "new-back-pain-snomed",
    "New back pain by SNOMED Condition (161891005 backache, 279039007 low back pain), "
    "12 days before asOf, after a 2019 breast cancer and with no earlier back pain -> "
    "urgent new-back-pain, no red flag.",
)
for suffix, code, display in (("", "161891005", "Backache"), ("b", "279039007", "Low back pain")):
    p = f.patient(suffix)
    p.breast_cancer()
    new_back_pain_alert(p, p.back_pain(SCT, code, display), note=f"SNOMED {code}")

f = fixture(
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
    new_back_pain_alert(p, p.back_pain(ICD10CM, code, display), note=f"ICD-10-CM {code}")

f = fixture(
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
    new_back_pain_alert(p, p.back_pain(ICD9CM, code, display), note=f"ICD-9-CM {code}")

f = fixture(
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
    new_back_pain_alert(p, obs, note=f"Observation 75325-1 valueCodeableConcept {code}")
p = f.patient("d")
p.breast_cancer()
obs = p.symptom("bp", SCT, "279039007", "Low back pain", value_boolean=True)
new_back_pain_alert(p, obs, note="Observation.code 279039007, valueBoolean true")
p = f.patient("e")
p.breast_cancer()
p.symptom("bp", SCT, "279039007", "Low back pain", value_boolean=False)
p.no_alert("Observation.code 279039007 with valueBoolean false: back pain absent")
p = f.patient("f")
p.breast_cancer()
p.condition("knee", ICD10CM, "M25.561", "Pain in right knee", onset=BP_DATE)
p.no_alert("M25.561 knee pain is not BACK_PAIN")

f = fixture(
    16,
    "high-spine-back-pain",
    "Each BACK_PAIN_HIGH_SPINE code (279038004, 81680005, M54.6, M54.2, 724.1, 723.1) "
    "12 days before asOf -> urgent new-back-pain with the high-spine-back-pain red flag "
    "(red flags never change priority).",
)
for suffix, system, code, display in (
    ("", SCT, "279038004", "Upper back pain"),
    ("b", SCT, "81680005", "Neck pain"),
    ("c", ICD10CM, "M54.6", "Pain in thoracic spine"),
    ("d", ICD10CM, "M54.2", "Cervicalgia"),
    ("e", ICD9CM, "724.1", "Pain in thoracic spine"),
    ("f", ICD9CM, "723.1", "Cervicalgia"),
):
    p = f.patient(suffix)
    p.breast_cancer()
    new_back_pain_alert(
        p, p.back_pain(system, code, display), note=code, red_flags=["high-spine-back-pain"]
    )

f = fixture(
    17,
    "chronic-back-pain",
    "Back pain is not new when another BACK_PAIN record lies 31-365 days before it: "
    "prior records 191 and 35 days before -> no alert; a prior record 445 days before, "
    "or two records 15 days apart (both recent) -> urgent.",
)
p = f.patient()
p.breast_cancer()
p.back_pain(onset="2025-11-10T09:00:00Z")
p.back_pain()
p.no_alert("backache 2026-05-20 with another 2025-11-10 (191 days before): chronic")
p = f.patient("b")
p.breast_cancer()
p.back_pain(onset="2026-04-15T09:00:00Z")
p.back_pain()
p.no_alert(
    "backache 2026-05-20 with another on 2026-04-15 (35 days before, itself not recent): chronic"
)
p = f.patient("c")
p.breast_cancer()
p.back_pain(onset="2025-03-01T09:00:00Z")
bp = p.back_pain()
new_back_pain_alert(p, bp, note="prior backache 2025-03-01 is 445 days before: outside 31-365")
p = f.patient("d")
p.breast_cancer()
bp1 = p.back_pain(onset="2026-05-05T09:00:00Z")
bp2 = p.back_pain()
p.alert(
    "urgent",
    ["new-back-pain"],
    red_flags=[],
    evidence=[bp1, bp2],
    note="backaches 2026-05-05 and 2026-05-20: 15 days apart, neither has another record "
    "31-365 days before it, both recent -> both are evidence",
)

f = fixture(
    18,
    "back-pain-before-breast-cancer",
    "New back pain must be dated on/after the first breast-cancer date when it is known: "
    "back pain 5 or 6 days before the diagnosis -> no alert; 10 days after, or with an "
    "undated breast-cancer Condition -> urgent.",
)
p = f.patient()
p.breast_cancer(onset="2026-05-25T10:00:00Z", clinical="active")
p.back_pain()
p.no_alert("breast cancer onset 2026-05-25, backache 2026-05-20 (before)")
p = f.patient("b")
p.breast_cancer(onset=None, recorded="2026-05-26T10:00:00Z", clinical="active")
p.back_pain()
p.no_alert("breast cancer without onset, recordedDate 2026-05-26; backache 2026-05-20 (before)")
p = f.patient("c")
p.breast_cancer(onset="2026-05-10T10:00:00Z", clinical="active")
new_back_pain_alert(p, p.back_pain(), note="breast cancer 2026-05-10, backache 2026-05-20 after")
p = f.patient("d")
p.breast_cancer(onset=None, recorded=None)
new_back_pain_alert(
    p,
    p.back_pain(),
    note="breast-cancer Condition has neither onset nor recordedDate: the "
    "first breast-cancer date is unknown, so the date rule does not apply",
)

f = fixture(
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
new_back_pain_alert(
    p,
    p.back_pain(onset=None, recorded=BP_DATE),
    note="no onset[x]: recordedDate 2026-05-20 is the clinical date",
)
p = f.patient("d")
p.breast_cancer()
new_back_pain_alert(
    p,
    p.back_pain(onset=None, onset_period_start=BP_DATE, recorded=None),
    note="onsetPeriod.start 2026-05-20",
)

f = fixture(
    20,
    "weight-loss-red-flag",
    "Recent WEIGHT_LOSS (R63.4 Condition, 448765001 Observation) adds the weight-loss "
    "red flag to a new-back-pain alert (still urgent); weight loss alone does not alert, "
    "and weight loss 78 days old is not a red flag.",
)
p = f.patient()
p.breast_cancer()
bp = p.back_pain()
p.condition("wl", ICD10CM, "R63.4", "Abnormal weight loss", onset="2026-05-22T09:00:00Z")
p.alert(
    "urgent",
    ["new-back-pain"],
    red_flags=["weight-loss"],
    evidence=[bp],
    note="R63.4 10 days before asOf; the weight-loss record qualifies, it is not evidence",
)
p = f.patient("b")
p.breast_cancer()
bp = p.back_pain()
p.symptom("wl", SCT, "448765001", "Unintentional weight loss", effective="2026-05-22T09:00:00Z")
p.alert(
    "urgent",
    ["new-back-pain"],
    red_flags=["weight-loss"],
    evidence=[bp],
    note="448765001 as Observation valueCodeableConcept",
)
p = f.patient("c")
p.breast_cancer()
p.condition("wl", ICD10CM, "R63.4", "Abnormal weight loss", onset="2026-05-22T09:00:00Z")
p.no_alert("weight loss alone: a red flag qualifies an alert, it never makes one")
p = f.patient("d")
p.breast_cancer()
bp = p.back_pain()
p.condition("wl", ICD10CM, "R63.4", "Abnormal weight loss", onset="2026-03-15T09:00:00Z")
new_back_pain_alert(p, bp, note="R63.4 on 2026-03-15 (78 days) is not recent: no red flag")

f = fixture(
    21,
    "progressive-pain-red-flag",
    "Back pain scores (LOINC 72514-3, bodySite back) rising by >= 2 within 30 days add "
    "the progressive-pain red flag to a new-back-pain alert: 3 -> 6 in 19 days flags; "
    "4 -> 5 does not; 3 -> 6 over 47 days does not; scores alone do not alert.",
)
p = f.patient()
p.breast_cancer()
bp = p.back_pain()
p.pain_score(3, "2026-05-08T09:00:00Z")
p.pain_score(6, "2026-05-27T09:00:00Z")
p.alert(
    "urgent",
    ["new-back-pain"],
    red_flags=["progressive-pain"],
    evidence=[bp],
    note="score 3 on 2026-05-08, 6 on 2026-05-27: +3 in 19 days",
)
p = f.patient("b")
p.breast_cancer()
bp = p.back_pain()
p.pain_score(4, "2026-05-08T09:00:00Z")
p.pain_score(5, "2026-05-27T09:00:00Z")
new_back_pain_alert(p, bp, note="score 4 -> 5: +1, not progressive")
p = f.patient("c")
p.breast_cancer()
p.pain_score(3, "2026-05-08T09:00:00Z")
p.pain_score(7, "2026-05-27T09:00:00Z")
p.no_alert("progressive pain scores without a BACK_PAIN record: red flag only, no finding")
p = f.patient("d")
p.breast_cancer()
bp = p.back_pain()
p.pain_score(3, "2026-04-10T09:00:00Z")
p.pain_score(6, "2026-05-27T09:00:00Z")
new_back_pain_alert(p, bp, note="score 3 on 2026-04-10, 6 on 2026-05-27: 47 days apart")

# ======================================================================= 4. suspected MSCC
f = fixture(
    22,
    "suspected-mscc",
    "A NEURO_DEFICIT dated within 14 days of asOf -> stat suspected-mscc, with back pain "
    "(both findings) or without; a NEURO_DEFICIT 20 days old is not suspected MSCC "
    "(no alert alone; urgent new-back-pain with back pain).",
)
p = f.patient()
p.breast_cancer()
bp = p.back_pain(onset="2026-05-27T09:00:00Z")
neuro = p.neuro()
p.alert(
    "stat",
    ["suspected-mscc", "new-back-pain"],
    red_flags=[],
    evidence=[neuro, bp],
    note="G95.20 on 2026-05-28 + backache 2026-05-27",
)
p = f.patient("b")
p.breast_cancer()
neuro = p.neuro(ICD10CM, "G83.4", "Cauda equina syndrome")
p.alert(
    "stat",
    ["suspected-mscc"],
    red_flags=[],
    evidence=[neuro],
    note="G83.4 on 2026-05-28, no back pain",
)
p = f.patient("c")
p.breast_cancer()
p.neuro(onset="2026-05-12T09:00:00Z")
p.no_alert("G95.20 on 2026-05-12: 20 days before asOf, outside 14 days")
p = f.patient("d")
p.breast_cancer()
bp = p.back_pain()
p.neuro(onset="2026-05-12T09:00:00Z")
new_back_pain_alert(p, bp, note="G95.20 20 days old is no finding; the backache still is")

f = fixture(
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
obs = p.symptom("neuro", ICD10CM, "R33.9", "Retention of urine, unspecified", effective=NEURO_DATE)
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

# ========================================================================= 5. calcium
f = fixture(
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

f = fixture(
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

f = fixture(
    26,
    "hypercalcemia-grade3",
    "Total calcium > 12.5-13.5 mg/dL is grade 3 -> stat: whole-blood 49765-1 13.0 mg/dL; "
    "2000-8 3.25 mmol/L = 13.03 mg/dL.",
)
p = f.patient()
p.breast_cancer()
ca = p.calcium(13.0, loinc="49765-1", display="Calcium [Mass/volume] in Blood")
p.alert("stat", ["hypercalcemia"], red_flags=[], evidence=[ca], note="49765-1 13.0 mg/dL: grade 3")
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

f = fixture(
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

f = fixture(
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

f = fixture(
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

f = fixture(
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
    "ca", "46099-8", "Calcium corrected for albumin [Mass/volume] in Serum or Plasma", 11.2, "mg/dL"
)
p.alert("urgent", ["hypercalcemia"], red_flags=[], evidence=[ca], note="11.2 mg/dL: grade 1")

IONIZED_BLOOD = "Calcium.ionized [Moles/volume] in Blood"
f = fixture(
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
    p.alert(prio, ["hypercalcemia"], red_flags=[], evidence=[ca], note=f"ionized {value} mmol/L")
p = f.patient("d")
p.breast_cancer()
p.lab("ca", "1994-3", IONIZED_BLOOD, 1.25, "mmol/L")
p.no_alert("ionized 1.25 mmol/L <= 1.32")
p = f.patient("e")
p.breast_cancer()
ca = p.lab(
    "ca",
    "17864-0",
    "Calcium.ionized [Mass/volume] in Serum or Plasma by Ion-selective membrane electrode (ISE)",
    6.2,
    "mg/dL",
)
p.alert(
    "asap",
    ["hypercalcemia"],
    red_flags=[],
    evidence=[ca],
    note="ionized 6.2 mg/dL / 4.008 = 1.547 mmol/L: grade 2 (as total calcium it would be normal)",
)
p = f.patient("f")
p.breast_cancer()
ca = p.lab("ca", "1995-0", "Calcium.ionized [Moles/volume] in Serum or Plasma", 1.45, "mmol/L")
p.alert(
    "urgent", ["hypercalcemia"], red_flags=[], evidence=[ca], note="ionized 1.45 mmol/L: grade 1"
)

f = fixture(
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

# ==================================================================== 6. rising calcium
f = fixture(
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

f = fixture(
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

# ========================================================================= 7. ALP
f = fixture(
    35,
    "rising-alp-no-baseline",
    "ALP above the ULN 147 U/L with no baseline -> routine rising-alp: 6768-6 "
    "210 U/L (1.43 x ULN).",
)
p = f.patient()
p.breast_cancer()
alp = p.alp(210)
p.alert("routine", ["rising-alp"], red_flags=[], evidence=[alp], note="210 > 147, no baseline")

f = fixture(
    36,
    "rising-alp-above-uln-baseline",
    "ALP above ULN with a baseline needs >= 1.25 x baseline: 170 vs median 130 "
    "(1.31) -> routine; 180 vs median 155 (1.16) -> no alert.",
)
p = f.patient()
p.breast_cancer()
for d, v in zip(BASELINE_DATES, (120, 130, 140), strict=True):
    p.alp(v, effective=d)
alp = p.alp(170)
p.alert(
    "routine",
    ["rising-alp"],
    red_flags=[],
    evidence=[alp],
    note="170 > 147 and 170 / 130 = 1.308 >= 1.25",
)
p = f.patient("b")
p.breast_cancer()
for d, v in zip(BASELINE_DATES, (150, 155, 160), strict=True):
    p.alp(v, effective=d)
p.alp(180)
p.no_alert("180 > 147 but 180 / 155 = 1.161 < 1.25")

f = fixture(
    37,
    "rising-alp-below-uln",
    "ALP at or below ULN rising >= 1.5 x baseline -> routine: 135 vs median 85 (1.59); "
    "120 vs 85 (1.41) -> no alert.",
)
p = f.patient()
p.breast_cancer()
for d, v in zip(BASELINE_DATES, (80, 85, 90), strict=True):
    p.alp(v, effective=d)
alp = p.alp(135)
p.alert(
    "routine",
    ["rising-alp"],
    red_flags=[],
    evidence=[alp],
    note="135 <= 147 and 135 / 85 = 1.588 >= 1.5",
)
p = f.patient("b")
p.breast_cancer()
for d, v in zip(BASELINE_DATES, (80, 85, 90), strict=True):
    p.alp(v, effective=d)
p.alp(120)
p.no_alert("120 / 85 = 1.412 < 1.5")

f = fixture(
    38,
    "alp-over-2-5x-uln",
    "ALP > 2.5 x ULN (2.5 x 147 = 367.5 U/L) -> urgent rising-alp: 400 U/L -> urgent; "
    "360 U/L (2.45 x ULN) -> routine.",
)
p = f.patient()
p.breast_cancer()
alp = p.alp(400)
p.alert("urgent", ["rising-alp"], red_flags=[], evidence=[alp], note="400 > 367.5")
p = f.patient("b")
p.breast_cancer()
alp = p.alp(360)
p.alert("routine", ["rising-alp"], red_flags=[], evidence=[alp], note="147 < 360 <= 367.5")

f = fixture(
    39,
    "alp-units",
    "ALP units: U/L = IU/L = ukat/L x 60: 3.5 ukat/L = 210 U/L -> routine; 7.0 ukat/L = "
    "420 U/L -> urgent; 200 with only unit text 'IU/L' -> routine; 77141-0 200 U/L -> "
    "routine.",
)
p = f.patient()
p.breast_cancer()
alp = p.alp(3.5, "ukat/L")
p.alert(
    "routine", ["rising-alp"], red_flags=[], evidence=[alp], note="3.5 ukat/L x 60 = 210 U/L > 147"
)
p = f.patient("b")
p.breast_cancer()
alp = p.alp(7.0, "ukat/L")
p.alert(
    "urgent", ["rising-alp"], red_flags=[], evidence=[alp], note="7.0 ukat/L x 60 = 420 U/L > 367.5"
)
p = f.patient("c")
p.breast_cancer()
alp = p.alp(200, "IU/L", ucum=None)
p.alert(
    "routine",
    ["rising-alp"],
    red_flags=[],
    evidence=[alp],
    note="valueQuantity has only unit 'IU/L' (no system/code), as real feeds do",
)
p = f.patient("d")
p.breast_cancer()
alp = p.alp(200, loinc="77141-0", display="Alkaline phosphatase")
p.alert("routine", ["rising-alp"], red_flags=[], evidence=[alp], note="LOINC 77141-0")

f = fixture(
    40,
    "ggt-red-flag",
    "GGT above its upper limit together with an ALP finding adds the ggt-raised red "
    "flag (ALP 210 + GGT 120 > 40 -> routine with ggt-raised); GGT raised without an "
    "ALP finding -> no alert; ALP finding with normal GGT -> routine, no red flag.",
)
p = f.patient()
p.breast_cancer()
alp = p.alp(210)
p.ggt(120)
p.alert(
    "routine",
    ["rising-alp"],
    red_flags=["ggt-raised"],
    evidence=[alp],
    note="GGT 2324-2 120 U/L > its referenceRange.high 40 (no default GGT limit in v1)",
)
p = f.patient("b")
p.breast_cancer()
p.alp(90)
p.ggt(120)
p.no_alert("ALP 90 is normal and there is no baseline: no ALP finding, so no alert")
p = f.patient("c")
p.breast_cancer()
alp = p.alp(210)
p.ggt(30)
p.alert("routine", ["rising-alp"], red_flags=[], evidence=[alp], note="GGT 30 <= 40")

# ==================================================================== 8. combination
f = fixture(
    41,
    "combination",
    "Two or more of {back pain, calcium, ALP} raise the highest priority one step, never "
    "to stat: new-back-pain (urgent) + rising-alp -> asap; rising-calcium + rising-alp "
    "(routine) -> urgent; hypercalcemia grade 2 (asap) + rising-alp -> asap; "
    "new-back-pain + grade-1 hypercalcemia -> asap.",
)
p = f.patient()
p.breast_cancer()
bp = p.back_pain()
alp = p.alp(210)
p.alert(
    "asap",
    ["new-back-pain", "rising-alp"],
    red_flags=[],
    evidence=[bp, alp],
    note="max(urgent, routine) = urgent, +1 = asap",
)
p = f.patient("b")
p.breast_cancer()
for d, v in zip(BASELINE_DATES, (9.0, 9.2, 9.4), strict=True):
    p.calcium(v, effective=d)
ca = p.calcium(10.3)
alp = p.alp(210)
p.alert(
    "urgent",
    ["rising-calcium", "rising-alp"],
    red_flags=[],
    evidence=[ca, alp],
    note="calcium 10.3 vs median 9.2 (+12%) and ALP 210 (no baseline): routine +1 = urgent",
)
p = f.patient("c")
p.breast_cancer()
ca = p.calcium(12.0)
alp = p.alp(210)
p.alert(
    "asap",
    ["hypercalcemia", "rising-alp"],
    red_flags=[],
    evidence=[ca, alp],
    note="asap +1 would be stat: combination never reaches stat, stays asap",
)
p = f.patient("d")
p.breast_cancer()
bp = p.back_pain()
ca = p.calcium(11.0)
p.alert(
    "asap",
    ["new-back-pain", "hypercalcemia"],
    red_flags=[],
    evidence=[bp, ca],
    note="urgent + urgent (grade 1) -> asap",
)

# ========================================================== 9. record status, units, dates
f = fixture(
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

f = fixture(
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

f = fixture(
    44,
    "unknown-unit",
    "A value whose unit cannot be converted is not used: calcium 6.0 'mEq/L' (no UCUM "
    "code) and ALP 400 'g' -> no alert; an unusable latest calcium leaves the earlier "
    "valid 12.0 mg/dL as the latest usable value -> asap.",
)
p = f.patient()
p.breast_cancer()
p.calcium(6.0, "mEq/L", ucum=None)
p.no_alert("6.0 mEq/L: no conversion rule for calcium in mEq/L (would be stat if read as mmol/L)")
p = f.patient("b")
p.breast_cancer()
p.alp(400, "g")
p.no_alert("ALP 400 g is not an enzyme activity (would be urgent if read as U/L)")
p = f.patient("c")
p.breast_cancer()
ca = p.calcium(12.0, effective="2026-05-20T08:00:00Z")
p.calcium(6.0, "mEq/L", ucum=None)
p.alert(
    "asap",
    ["hypercalcemia"],
    red_flags=[],
    evidence=[ca],
    note="latest 6.0 mEq/L (2026-05-25) is not used; 12.0 mg/dL on 2026-05-20: grade 2",
)

f = fixture(
    45,
    "comparator",
    "A comparator on a value: use the number and note the comparator: calcium "
    "'>14.0 mg/dL' -> 14.0 -> grade 4 stat.",
)
p = f.patient()
p.breast_cancer()
ca = p.calcium(14.0, comparator=">")
p.alert(
    "stat",
    ["hypercalcemia"],
    red_flags=[],
    evidence=[ca],
    note="valueQuantity.comparator '>' 14.0 mg/dL; the alert should mention '>'",
)

f = fixture(
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
    "asap", ["hypercalcemia"], red_flags=[], evidence=[ca], note="effectivePeriod.start 2026-05-25"
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


# ============================================================ 10. clarifications (v1.1, §8)
# clinical-rules.md section 8 settles readings the v1 text left open; each reading has a
# scenario here, with both sides of its boundary where it has one.
IONIZED = "Calcium.ionized [Moles/volume] in Blood"
BONE_ALP = "Alkaline phosphatase.bone [Enzymatic activity/volume] in Serum or Plasma"

f = fixture(
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
new_back_pain_alert(p, bp, note="prior back pain 30 calendar days before: not in 31-365")
p = f.patient("g")
p.breast_cancer(onset="2026-05-20T18:00:00Z")
bp = p.back_pain()
new_back_pain_alert(p, bp, note="back pain 09:00, diagnosis 18:00 the same UTC day: on/after")
p = f.patient("h")
p.breast_cancer(onset="2026-05-21T00:30:00Z")
p.back_pain()
p.no_alert("back pain the UTC day before the diagnosis")

f = fixture(
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

f = fixture(
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

f = fixture(
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

f = fixture(
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

f = fixture(
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

f = fixture(
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

f = fixture(
    54,
    "v11-absent-symptoms",
    "v1.1: an absent symptom does not count whatever its code: a back pain score 0 whose "
    "code also carries backache 161891005 -> none, the same with score 4 -> urgent; a "
    "urinary-retention Observation R33.9 with valueBoolean false -> none, true -> stat.",
)
BACKACHE = coding(SCT, "161891005", "Backache")
p = f.patient()
p.breast_cancer()
p.pain_score(0, BP_DATE, also=BACKACHE)
p.no_alert("score 0: no pain")
p = f.patient("b")
p.breast_cancer()
s = p.pain_score(4, BP_DATE, also=BACKACHE)
new_back_pain_alert(p, s, note="score 4 with a backache coding: back pain")
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

f = fixture(
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
new_back_pain_alert(p, bp, note="confirmed without system counts")
p = f.patient("e")
p.breast_cancer()
p.bone_mets(verification="refuted", verification_system=False)
bp = p.back_pain()
new_back_pain_alert(p, bp, note="refuted bone metastasis (no system) does not suppress")

f = fixture(
    56,
    "v11-partial-retraction-state",
    "v1.1: after a partial retraction the alert is what the remaining evidence supports "
    "(here in one write; the step-by-step revoke and re-issue at the lower priority is in "
    "tests/integration/test_status_by_code.py): back pain with a calcium 13.0 entered in "
    "error -> urgent new-back-pain only; a back pain refuted without system with a calcium "
    "12.0 -> asap hypercalcemia only.",
)
p = f.patient()
p.breast_cancer()
bp = p.back_pain()
p.calcium(13.0, status="entered-in-error")
new_back_pain_alert(p, bp, note="the grade-3 calcium is withdrawn: urgent, not stat")
p = f.patient("b")
p.breast_cancer()
p.back_pain(verification="refuted", verification_system=False)
ca = p.calcium(12.0)
p.alert("asap", ["hypercalcemia"], red_flags=[], evidence=[ca], note="back pain withdrawn")

f = fixture(
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
    new_back_pain_alert(p, p.back_pain(), note=f"breast cancer coded {code} ({system})")
p = f.patient("d")
p.breast_cancer()
bp = p.back_pain(ICD10, "M54.5", "Low back pain")
new_back_pain_alert(p, bp, note="back pain coded ICD-10 M54.5")
p = f.patient("e")
p.breast_cancer(ICD9CM, "C50.9", "Malignant neoplasm of breast, unspecified")
p.back_pain()
p.no_alert("C50.9 is not an ICD-9-CM code: not eligible")


# ============================================================================== output
README_HEAD = """\
# Clinical scenario fixtures (rule set v1, clarified v1.1)

<!-- Generated by build_fixtures.py: edit the scenarios there and re-run
     `.venv/bin/python fhir_fixtures/build_fixtures.py`; do not edit this file by hand. -->

Each scenario is two files:

- `NN-name.json`: a FHIR R4 **transaction Bundle** (Patient, Conditions, Observations). Every
  entry has `request.method` `PUT`, `request.url` `Type/id` and `fullUrl`
  `https://example.org/fhir/Type/id`, so replaying a fixture twice changes nothing. Ids are
  unique across all fixtures (prefix `fxNN`), so every fixture can be replayed into one server.
  All patients are synthetic (meta.tag `HTEST`).
- `NN-name.expect.json`: what the service must produce for it (format below).

Replay tools must skip `*.expect.json` when given this folder. `build_fixtures.py` writes all of
these files; `tests/unit/fixtures/test_fixture_files.py` checks them (R4 validity, PUT entries,
unique ids, expectation schema and codes).

## Evaluation time

All fixtures are judged at **asOf = `2026-06-01T12:00:00Z`** (`--as-of`, `?asOf=`) and date their
data relative to it: "recent" = [2026-05-02T12:00Z, 2026-06-01T12:00Z], the suspected-MSCC window
= [2026-05-18T12:00Z, 2026-06-01T12:00Z]. Usual dates: breast cancer 2019-04-10, back pain
2026-05-20 (12 days before), neuro deficit 2026-05-28 (4 days), latest lab 2026-05-25 (7 days),
baseline labs 2025-09-10 / 2025-12-10 / 2026-03-10 (257, 166, 76 days before the latest lab).
Expected priorities are worked out by hand from the spec defaults (ULN calcium 10.5 mg/dL =
2.62 mmol/L, ionized 1.32 mmol/L, ALP 147 U/L; mg/dL = mmol/L x 4.008; U/L = ukat/L x 60).

## Clarifications (v1.1)

Fixtures 47-57 (`NN-v11-...`) pin down the readings of clinical-rules.md section 8, each with
patients on both sides of its boundary: UTC calendar-day windows (47), records dated after asOf
ignored (48), calcium limits in mg/dL (49), the latest calcium per kind (50), the nearest albumin
with ties to the later one (51), a unitless referenceRange.high (52), bone-specific ALP as its
own analyte (53), absent symptoms (54), verificationStatus read by code with or without
`system` (55), the state after a partial retraction (56; the step-by-step revoke and re-issue is
in `tests/integration/test_status_by_code.py`) and ICD-10 (WHO) plus SNOMED CT descendant codes
(57). `tests/unit/fixtures/test_v11_coverage.py` checks that every section 8 bullet has one.
These are the only fixtures whose Conditions may carry a verificationStatus without `system`.

## Expectation format

```json
{"fixture": "25-hypercalcemia-grade2",
 "description": "what this scenario proves, one sentence",
 "asOf": "2026-06-01T12:00:00Z",
 "patients": [
   {"patient": "Patient/fx25", "alert": true, "priority": "asap",
    "findings": ["hypercalcemia"], "redFlags": [], "evidence": ["Observation/fx25-ca-1"],
    "note": "12.0 mg/dL: grade 2"},
   {"patient": "Patient/fx05", "alert": false}
 ]}
```

- `fixture` (required): the file name without `.json` / `.expect.json`.
- `description` (required): one sentence, what the scenario proves (with the arithmetic).
- `asOf` (required): the evaluation time; the same for every fixture.
- `patients[].patient` (required): `Patient/<id>`.
- `patients[].alert` (required): `false` = the patient has **no** active Flag and **no** active
  CommunicationRequest; `true` = the patient has **exactly one** active Flag.
- `patients[].priority` (required when `alert` is true): the priority of the patient's
  **newest** active CommunicationRequest: `routine`, `urgent`, `asap` or `stat`.
- `patients[].findings` (required when `alert` is true): the set of finding codes on the alert,
  compared as sets: `new-back-pain`, `suspected-mscc`, `hypercalcemia`, `rising-calcium`,
  `rising-alp`.
- `patients[].redFlags` (optional): when present, set equality with the alert's red flags:
  `high-spine-back-pain`, `weight-loss`, `progressive-pain`, `ggt-raised`; `[]` asserts none.
- `patients[].evidence` (optional): when present, set equality with the references the Flag
  cites as evidence (its flag-detail extensions), e.g. `Observation/fx25-ca-1`.
- `patients[].note` (optional): free text for humans (why); ignored when comparing.

Omitted optional keys are not checked. Patients of the Bundle not listed are not checked either
(every fixture lists all of its patients). Integration engineers write this same format for their
own test patients.

Evidence convention (what `evidence` pins): the records that make a finding fire, i.e. the recent
back-pain record(s), the neuro-deficit record(s), the latest calcium or ALP value. Records that
are only used are *supporting*, named in the CommunicationRequest text but not cited as Flag
evidence: the ALBUMIN of a Payne correction, baseline values, the look-back records that make
back pain chronic, and the records behind red flags (weight loss, pain scores, GGT).

## Scenarios

| file | proves | expected |
|---|---|---|
"""


def expected_summary(f: Fixture) -> str:
    parts = []
    for p in f.patients:
        e = p.expected
        assert e is not None
        pid = e["patient"].removeprefix("Patient/")
        if not e["alert"]:
            parts.append(f"{pid}: no alert")
        else:
            s = f"{pid}: {e['priority']} {'+'.join(e['findings'])}"
            if e.get("redFlags"):
                s += f" [{', '.join(e['redFlags'])}]"
            parts.append(s)
    return "; ".join(parts)


def render() -> dict[str, str]:
    """File name -> text of every file this script writes (bundles, expectations, README)."""
    files: dict[str, str] = {}
    rows = []
    for f in FIXTURES:
        files[f"{f.name}.json"] = json.dumps(f.bundle(), indent=2) + "\n"
        files[f"{f.name}.expect.json"] = (
            json.dumps(f.expectation(), indent=2, ensure_ascii=False) + "\n"
        )
        desc = f.description.replace("|", "/")
        rows.append(f"| `{f.name}.json` | {desc} | {expected_summary(f)} |")
    files["README.md"] = README_HEAD + "\n".join(rows) + "\n"
    return files


def main() -> None:
    for name, text in render().items():
        (HERE / name).write_text(text)
    print(f"wrote {len(FIXTURES)} fixtures to {HERE}")


if __name__ == "__main__":
    main()
