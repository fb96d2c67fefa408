"""A small builder API for the scenario fixtures: a Fixture holds patients, each PatientBuilder
adds that patient's Conditions and Observations and states what the service must conclude.

Scenario modules only say *what* a patient has (``p.breast_cancer()``, ``p.calcium(12.0)``) and
*what is expected* (``p.alert(...)`` / ``p.no_alert(...)``); every FHIR detail (codings, UCUM
quantities, ids, dates, the PUT entries) lives here, so all fixtures are shaped alike.

Ids are deterministic: ``fxNN`` for fixture NN, a suffix per patient (``fxNNb``), and
``<patient>-<kind>-<n>`` for each record, so regenerating gives the same bytes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypedDict, Unpack

Json = dict[str, Any]

# ----------------------------------------------------------------------------- constants
AS_OF: Final = "2026-06-01T12:00:00Z"  # every fixture is judged at this instant
BASE: Final = "https://example.org/fhir"  # fullUrl base of every entry

SCT: Final = "http://snomed.info/sct"
ICD10CM: Final = "http://hl7.org/fhir/sid/icd-10-cm"
ICD9CM: Final = "http://hl7.org/fhir/sid/icd-9-cm"
ICD10: Final = "http://hl7.org/fhir/sid/icd-10"  # WHO ICD-10
LOINC: Final = "http://loinc.org"
UCUM: Final = "http://unitsofmeasure.org"
CLINICAL: Final = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION: Final = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/condition-category"
OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
ACT_REASON: Final = "http://terminology.hl7.org/CodeSystem/v3-ActReason"

# The codes an expectation may use (clinical-rules.md §7 and the red flags of §5). Kept here on
# purpose: the fixtures are written against the spec, not against the service's own constants.
FINDINGS: Final = (
    "new-back-pain",
    "suspected-mscc",
    "hypercalcemia",
    "rising-calcium",
    "rising-alp",
)
PRIORITIES: Final = ("routine", "urgent", "asap", "stat")
RED_FLAGS: Final = ("high-spine-back-pain", "weight-loss", "progressive-pain", "ggt-raised")

# Default clinical dates (asOf = 2026-06-01T12:00:00Z).
BC_ONSET: Final = "2019-04-10T10:00:00Z"  # breast cancer diagnosed 7 years before asOf
METS_ONSET: Final = "2025-11-03T10:00:00Z"  # known bone metastasis, 210 days before asOf
BP_DATE: Final = "2026-05-20T09:00:00Z"  # back pain: 12 days before asOf (recent)
NEURO_DATE: Final = "2026-05-28T09:00:00Z"  # neuro deficit: 4 days before asOf (within 14 days)
LAB_DATE: Final = "2026-05-25T08:00:00Z"  # latest lab: 7 days before asOf (recent)
# Baseline dates: 257, 166 and 76 days before LAB_DATE, all inside its 31-365 day window.
BASELINE_DATES: Final = ("2025-09-10T08:00:00Z", "2025-12-10T08:00:00Z", "2026-03-10T08:00:00Z")

# Default of `recorded=` / `ucum=`: the recordedDate is the onset, the UCUM code is the unit text.
SAME: Final = "same"

# Synthetic names, handed out in order over all patients of all fixtures (see `patient_name`).
GIVEN: Final = (
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
GIVEN_MALE: Final = ("Anton", "Bruno", "Carl", "Dieter")
FAMILY: Final = (
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


# ------------------------------------------------------------------------ FHIR datatypes
def coding(system: str, code: str, display: str | None = None) -> Json:
    c: Json = {"system": system, "code": code}
    if display:
        c["display"] = display
    return c


def concept(system: str, code: str, display: str | None = None) -> Json:
    """A CodeableConcept of one coding; the display doubles as text (never matched on)."""
    cc: Json = {"coding": [coding(system, code, display)]}
    if display:
        cc["text"] = display
    return cc


def quantity(value: float, unit: str | None, ucum: str | None) -> Json:
    """A Quantity; without `ucum` it carries only the unit text, as some real feeds do."""
    q: Json = {"value": value}
    if unit is not None:
        q["unit"] = unit
    if ucum is not None:
        q["system"] = UCUM
        q["code"] = ucum
    return q


def patient_name(index: int, gender: str) -> Json:
    """The synthetic HumanName of the `index`-th patient over all fixtures (0-based)."""
    given = GIVEN_MALE[index % len(GIVEN_MALE)] if gender == "male" else GIVEN[index % len(GIVEN)]
    family = FAMILY[(index * 7) % len(FAMILY)]
    return {"use": "official", "family": family, "given": [given]}


# ------------------------------------------------------------------- keyword option sets
class ConditionOptions(TypedDict, total=False):
    """Optional Condition fields, shared by `condition` and the helpers built on it."""

    onset_period_start: str | None
    onset_age: float | None
    recorded: str | None  # SAME (default): the onset; None: no recordedDate
    clinical: str | None
    verification: str
    verification_system: bool  # False: the status coding has no system (v1.1, §8)
    category: str
    text: str | None


class LabOptions(TypedDict, total=False):
    """Optional laboratory Observation fields, shared by `lab` and the analyte helpers."""

    ucum: str | None  # SAME (default): the unit text is the UCUM code; None: unit text only
    effective: str | None
    effective_period_start: str | None
    issued: str | None
    status: str
    comparator: str | None
    ref_high: tuple[float, str | None, str | None] | None  # (value, unit, UCUM code)


# ------------------------------------------------------------------------------ fixtures
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
        self, suffix: str = "", *, gender: str = "female", birth: str = "1961-03-14"
    ) -> PatientBuilder:
        """A new patient `fxNN<suffix>`; records added to it follow it in the Bundle."""
        p = PatientBuilder(self, self.prefix + suffix, gender=gender, birth=birth)
        self.patients.append(p)
        return p

    def bundle(self, first_patient: int = 0) -> Json:
        """The transaction Bundle of PUT entries; `first_patient` numbers the patient names."""
        names = {
            p.id: patient_name(first_patient + i, p.gender) for i, p in enumerate(self.patients)
        }
        entries = []
        for r in self.resources:
            if r["resourceType"] == "Patient":
                r = {**r, "name": [names[r["id"]]]}
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
        """The `.expect.json` document (format in README.md)."""
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


@dataclass(frozen=True)
class Section:
    """The scenarios that pin one section of clinical-rules.md, in one module."""

    title: str
    scenarios: tuple[Callable[[], Fixture], ...]

    @property
    def module(self) -> str:
        """The file that holds them, relative to fhir_fixtures/ (for the README)."""
        return "scenarios/" + self.scenarios[0].__module__.rsplit(".", 1)[-1] + ".py"


class PatientBuilder:
    """One synthetic patient of a fixture, its records and its expected outcome."""

    def __init__(self, fixture: Fixture, pid: str, *, gender: str, birth: str) -> None:
        self.fixture = fixture
        self.id = pid
        self.ref = f"Patient/{pid}"
        self.gender = gender
        self.expected: Json | None = None
        self.counters: dict[str, int] = defaultdict(int)
        fixture.resources.append(
            {
                "resourceType": "Patient",
                "id": pid,
                "meta": {"tag": [coding(ACT_REASON, "HTEST", "test health records")]},
                "active": True,
                "name": [],  # filled in by Fixture.bundle: names count over all fixtures
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
        recorded: str | None = SAME,
        clinical: str | None = "active",
        verification: str = "confirmed",
        verification_system: bool = True,
        category: str = "encounter-diagnosis",
        text: str | None = None,
    ) -> str:
        """A Condition; without system/code it is coded by `text` only. Returns its reference."""
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
        if recorded == SAME:
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
        recorded: str | None = SAME,
        clinical: str = "remission",
        verification: str = "confirmed",
        verification_system: bool = True,
    ) -> str:
        """A BREAST_CANCER problem-list Condition (default SNOMED 254837009, 2019, remission)."""
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
        """A KNOWN_BONE_METASTASIS problem-list Condition dated METS_ONSET."""
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
        **options: Unpack[ConditionOptions],
    ) -> str:
        """A BACK_PAIN Condition (default SNOMED backache, 12 days before asOf)."""
        return self.condition("bp", system, code, display, onset=onset, **options)

    def neuro(
        self,
        system: str = ICD10CM,
        code: str = "G95.20",
        display: str | None = "Unspecified cord compression",
        *,
        onset: str = NEURO_DATE,
    ) -> str:
        """A NEURO_DEFICIT Condition (default cord compression G95.20, 4 days before asOf)."""
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
        ucum: str | None = SAME,
        effective: str | None = LAB_DATE,
        effective_period_start: str | None = None,
        issued: str | None = None,
        status: str = "final",
        comparator: str | None = None,
        ref_high: tuple[float, str | None, str | None] | None = None,
    ) -> str:
        """A laboratory Observation with a valueQuantity and, optionally, a referenceRange.high
        given as (value, unit text, UCUM code). Returns its reference."""
        r = self._observation(
            kind,
            "laboratory",
            concept(LOINC, loinc, display),
            effective=effective,
            effective_period_start=effective_period_start,
            issued=issued,
            status=status,
        )
        q = quantity(value, unit, unit if ucum == SAME else ucum)
        if comparator is not None:
            q = {"value": value, "comparator": comparator} | {
                k: v for k, v in q.items() if k != "value"
            }
        r["valueQuantity"] = q
        if ref_high is not None:
            hv, hu, hc = ref_high
            r["referenceRange"] = [{"high": quantity(hv, hu, hc)}]
        return f"Observation/{r['id']}"

    def calcium(
        self,
        value: float,
        unit: str = "mg/dL",
        *,
        loinc: str | None = None,
        display: str | None = None,
        **options: Unpack[LabOptions],
    ) -> str:
        """Total calcium: LOINC 17861-6 in mg/dL, 2000-8 in any other unit, unless given."""
        if unit == "mg/dL":
            default = ("17861-6", "Calcium [Mass/volume] in Serum or Plasma")
        else:
            default = ("2000-8", "Calcium [Moles/volume] in Serum or Plasma")
        return self.lab("ca", loinc or default[0], display or default[1], value, unit, **options)

    def albumin(
        self, value: float, unit: str = "g/dL", *, loinc: str = "1751-7", effective: str = LAB_DATE
    ) -> str:
        """An ALBUMIN result (1751-7, 61151-7 or 2862-1), dated with the latest lab by default."""
        displays = {
            "1751-7": "Albumin [Mass/volume] in Serum or Plasma",
            "61151-7": "Albumin [Mass/volume] in Serum or Plasma by BCG dye binding",
            "2862-1": "Albumin [Mass/volume] in Serum or Plasma by Electrophoresis",
        }
        return self.lab("alb", loinc, displays[loinc], value, unit, effective=effective)

    def alp(
        self,
        value: float,
        unit: str | None = "U/L",
        *,
        loinc: str = "6768-6",
        display: str = "Alkaline phosphatase [Enzymatic activity/volume] in Serum or Plasma",
        **options: Unpack[LabOptions],
    ) -> str:
        """Alkaline phosphatase (total 6768-6 unless given, e.g. bone-specific 1777-2)."""
        return self.lab("alp", loinc, display, value, unit, **options)

    def ggt(self, value: float, high: float = 40) -> str:
        """GGT in U/L with its own referenceRange.high (v1 has no default GGT limit)."""
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
        """Expect exactly one active Flag whose newest CommunicationRequest has `priority`.

        `redFlags` is always written, so leaving `red_flags` out asserts that there are none;
        `evidence` is checked only when given."""
        if priority not in PRIORITIES:
            raise ValueError(f"{self.id}: unknown priority {priority}")
        if not set(findings) <= set(FINDINGS):
            raise ValueError(f"{self.id}: unknown findings {findings}")
        if not set(red_flags or []) <= set(RED_FLAGS):
            raise ValueError(f"{self.id}: unknown red flags {red_flags}")
        e: Json = {
            "patient": self.ref,
            "alert": True,
            "priority": priority,
            "findings": findings,
            "redFlags": red_flags or [],
        }
        if evidence is not None:
            e["evidence"] = evidence
        if note:
            e["note"] = note
        self.expected = e

    def no_alert(self, note: str = "") -> None:
        """Expect no active Flag and no active CommunicationRequest for this patient."""
        self.expected = {"patient": self.ref, "alert": False}
        if note:
            self.expected["note"] = note

    def new_back_pain_alert(
        self, evidence: str, note: str = "", red_flags: list[str] | None = None
    ) -> None:
        """The common outcome: urgent new-back-pain citing the one back-pain record."""
        self.alert(
            "urgent", ["new-back-pain"], red_flags=red_flags or [], evidence=[evidence], note=note
        )
