"""Every row of the value-set table (clinical-rules.md §3), matched by (system, code) only."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from ruleset.valuesets import value_set_from_fhir
from tests.builders.rules import (
    ICD9,
    ICD10,
    ICD10CM,
    LOINC,
    SNOMED,
    breast_cancer,
    condition,
    day_ago,
    run,
)
from workers.rules import RULESET_VERSION, load_config

CONFIG = load_config()


def sets(system: str, code: str) -> frozenset[str]:
    return CONFIG.index.lookup(system, code)


# (value set, system, code) straight from the table; ICD codes as printed (dotted).
TABLE: list[tuple[str, str, str]] = [
    *[("BREAST_CANCER", SNOMED, c) for c in ("254837009", "429087003", "372064008")],
    *[
        ("BREAST_CANCER", ICD10CM, c)
        for c in ("C50.011", "C50.929", "C50.912", "C50.A0", "C50.A1", "C50.A2", "C50.9")
    ],
    *[("BREAST_CANCER", ICD10CM, c) for c in ("Z85.3", "Z86.000")],
    *[("BREAST_CANCER", ICD9, c) for c in ("174.0", "174.9", "175.0", "175.9", "174", "V10.3")],
    ("KNOWN_BONE_METASTASIS", SNOMED, "94222008"),
    ("KNOWN_BONE_METASTASIS", ICD10CM, "C79.51"),
    ("KNOWN_BONE_METASTASIS", ICD10CM, "C79.52"),
    ("KNOWN_BONE_METASTASIS", ICD9, "198.5"),
    *[("BACK_PAIN", SNOMED, c) for c in ("161891005", "279039007", "279038004", "81680005")],
    *[
        ("BACK_PAIN", ICD10CM, c)
        for c in ("M54.5", "M54.50", "M54.51", "M54.59", "M54.6", "M54.89", "M54.9", "M54.2")
    ],
    ("BACK_PAIN", ICD10CM, "G89.3"),
    *[("BACK_PAIN", ICD9, c) for c in ("724.1", "724.2", "724.5", "723.1")],
    *[("BACK_PAIN_HIGH_SPINE", ICD10CM, c) for c in ("M54.6", "M54.2")],
    *[("BACK_PAIN_HIGH_SPINE", SNOMED, c) for c in ("279038004", "81680005")],
    *[("BACK_PAIN_HIGH_SPINE", ICD9, c) for c in ("724.1", "723.1")],
    *[
        ("NEURO_DEFICIT", ICD10CM, c)
        for c in (
            "G95.20",
            "G95.29",
            "G83.4",
            "R33.8",
            "R33.9",
            "R32",
            "R15.9",
            "R20.0",
            "R20.1",
            "R20.2",
            "R26.2",
            "M62.81",
            *(f"M54.1{d}" for d in range(9)),
        )
    ],
    *[("NEURO_DEFICIT", SNOMED, c) for c in ("71286001", "192970008", "267064002", "91019004")],
    *[
        ("NEURO_DEFICIT", ICD9, c)
        for c in ("336.9", "344.60", "344.61", "788.20", "782.0", "781.2")
    ],
    ("WEIGHT_LOSS", ICD10CM, "R63.4"),
    ("WEIGHT_LOSS", SNOMED, "448765001"),
    *[("CALCIUM_TOTAL", LOINC, c) for c in ("17861-6", "2000-8", "49765-1")],
    *[("CALCIUM_CORRECTED", LOINC, c) for c in ("29265-6", "46099-8")],
    *[("CALCIUM_IONIZED", LOINC, c) for c in ("1994-3", "1995-0", "17863-2", "17864-0")],
    *[("ALBUMIN", LOINC, c) for c in ("1751-7", "61151-7", "2862-1")],
    *[("ALP", LOINC, c) for c in ("6768-6", "77141-0", "1777-2")],
    ("GGT", LOINC, "2324-2"),
    ("PAIN_SEVERITY", LOINC, "72514-3"),
]


@pytest.mark.parametrize(("name", "system", "code"), TABLE)
def test_every_table_row_matches(name: str, system: str, code: str) -> None:
    assert name in sets(system, code)


@pytest.mark.parametrize(("name", "system", "code"), [r for r in TABLE if "." in r[2]])
def test_icd_codes_match_without_the_dot(name: str, system: str, code: str) -> None:
    assert name in sets(system, code.replace(".", ""))


def test_icd_codes_match_case_insensitively_and_trimmed() -> None:
    assert "BREAST_CANCER" in sets(ICD10CM, " c50.a1 ")


@pytest.mark.parametrize("code", ["C50.912", "C50912", "Z85.3", "C79.51", "M54.5", "R63.4"])
def test_who_icd10_system_carries_the_same_codes(code: str) -> None:
    assert sets(ICD10, code) == sets(ICD10CM, code)


@pytest.mark.parametrize(
    ("system", "code"),
    [
        (SNOMED, "429740004"),  # family history of breast cancer: NOT the patient's own
        (ICD10CM, "Z80.3"),  # family history of breast cancer (ICD-10-CM)
        (ICD10CM, "C51.9"),  # next category
        (ICD10CM, "C5"),  # shorter than the C50 root
        (ICD10CM, "D05.10"),  # carcinoma in situ: not listed
        (ICD9, "176.0"),
        (ICD9, "V10.4"),
        (ICD10CM, "Z86.001"),
        (LOINC, "254837009"),  # right code, wrong system
        (ICD10CM, "254837009"),
        ("http://snomed.info/sct/", "254837009"),  # systems are exact URIs
    ],
)
def test_not_breast_cancer(system: str, code: str) -> None:
    assert "BREAST_CANCER" not in sets(system, code)


@pytest.mark.parametrize(
    ("system", "code", "absent_from"),
    [
        (ICD10CM, "M54.1", "NEURO_DEFICIT"),  # the radiculopathy parent is not listed
        (ICD10CM, "M54.19", "NEURO_DEFICIT"),
        (ICD10CM, "M54.4", "BACK_PAIN"),  # lumbago with sciatica: not listed
        (ICD10CM, "M54.5", "BACK_PAIN_HIGH_SPINE"),  # low back pain is not a red flag
        (SNOMED, "161891005", "BACK_PAIN_HIGH_SPINE"),
        (ICD10CM, "C79.5", "KNOWN_BONE_METASTASIS"),
        (ICD10CM, "C79.511", "BACK_PAIN"),
        (ICD10CM, "R63.5", "WEIGHT_LOSS"),
    ],
)
def test_codes_outside_the_sets(system: str, code: str, absent_from: str) -> None:
    assert absent_from not in sets(system, code)


def test_high_spine_codes_are_back_pain_too() -> None:
    for name, system, code in TABLE:
        if name == "BACK_PAIN_HIGH_SPINE":
            assert "BACK_PAIN" in sets(system, code)


def test_display_text_is_never_used() -> None:
    bogus = {
        "resourceType": "Condition",
        "id": "x",
        "code": {
            "coding": [{"system": SNOMED, "code": "999999", "display": "Breast cancer"}],
            "text": "Malignant neoplasm of breast",
        },
        "onsetDateTime": "2020-01-01",
    }
    assert run(bogus).eligible is False


@pytest.mark.parametrize(
    ("system", "code"),
    [
        (SNOMED, "254837009"),
        (SNOMED, "429087003"),
        (SNOMED, "372064008"),
        (ICD10CM, "C50.912"),
        (ICD10CM, "C50912"),
        (ICD10CM, "C50.A2"),
        (ICD10CM, "Z85.3"),
        (ICD10CM, "Z86000"),
        (ICD9, "174.9"),
        (ICD9, "1759"),
        (ICD9, "V10.3"),
    ],
)
def test_breast_cancer_condition_makes_eligible(system: str, code: str) -> None:
    assert run(condition("c", code, system, onset="2020-01-01")).eligible is True


def test_family_history_condition_does_not_make_eligible() -> None:
    assert run(condition("fh", "429740004", SNOMED, onset="2020-01-01")).eligible is False


def test_an_extra_coding_outside_the_sets_does_not_matter() -> None:
    resource = breast_cancer()
    resource["code"]["coding"].insert(0, {"system": "http://example.org/local", "code": "BC"})
    assert run(resource).eligible is True


def test_coding_without_system_or_code_is_ignored() -> None:
    resource = condition("c", "C50.9", onset=day_ago(10))
    resource["code"]["coding"] = [{"code": "C50.9"}, {"system": ICD10CM}]
    assert run(resource).eligible is False


# -- the shipped data -------------------------------------------------------------------------


def test_shipped_rule_set_has_the_published_version() -> None:
    assert CONFIG.version == RULESET_VERSION == "bone-mets-v1.1"


def test_shipped_value_sets_are_fhir_valuesets_named_as_the_spec() -> None:
    folder = resources.files("ruleset.data") / "valuesets"
    names = set()
    for node in folder.iterdir():
        if not node.name.endswith(".json"):
            continue
        vs = json.loads(node.read_text(encoding="utf-8"))
        assert vs["resourceType"] == "ValueSet"
        assert vs["status"] == "active"
        assert vs["version"] == RULESET_VERSION
        assert vs["url"].startswith("https://")
        names.add(vs["name"])
    assert {
        "BREAST_CANCER",
        "KNOWN_BONE_METASTASIS",
        "BACK_PAIN",
        "BACK_PAIN_HIGH_SPINE",
        "NEURO_DEFICIT",
        "WEIGHT_LOSS",
        "CALCIUM_TOTAL",
        "CALCIUM_CORRECTED",
        "CALCIUM_IONIZED",
        "ALBUMIN",
        "ALP",
        "GGT",
        "PAIN_SEVERITY",
    } <= names


def test_family_history_code_appears_in_no_shipped_value_set() -> None:
    assert sets(SNOMED, "429740004") == frozenset()


@pytest.mark.parametrize(
    "compose",
    [
        {
            "include": [
                {"system": SNOMED, "filter": [{"property": "concept", "op": "is-a", "value": "1"}]}
            ]
        },
        {
            "include": [
                {
                    "system": ICD10CM,
                    "filter": [{"property": "concept", "op": "regex", "value": "C"}],
                }
            ]
        },
        {
            "include": [{"system": ICD10CM, "concept": [{"code": "C50"}]}],
            "exclude": [{"system": ICD10CM}],
        },
        {"include": [{"valueSet": ["http://example.org/vs"], "system": ICD10CM}]},
    ],
)
def test_loader_refuses_what_the_matcher_cannot_honour(compose: dict[str, object]) -> None:
    resource = {"resourceType": "ValueSet", "name": "X", "status": "active", "compose": compose}
    with pytest.raises(ValueError):
        value_set_from_fhir(resource, CONFIG.dotless_systems)


# -- SNOMED CT descendants of 254837009 (clinical-rules.md §8) ---------------------------------

# The §3 table's own SNOMED rows; everything else in the SNOMED include is a §8 addition.
TABLE_SNOMED_BREAST_CANCER = frozenset({"254837009", "429087003", "372064008"})

# Each §8 addition with the display the value set lists for it. Append a code here only once
# its place under 254837009 (and its being a primary malignant neoplasm) is confirmed in a
# public SNOMED CT browser or release, and name that source in the value set's description.
SNOMED_DESCENDANTS: list[tuple[str, str]] = [
    ("408643008", "Infiltrating duct carcinoma of breast"),
    # From the SNOMED CT (US 20210901) expansion of HL7 mCODE mcode-primary-malignant-neoplasm-
    # disorder-vs (is-a 363346000 minus is-a 128462008); see the value set's description.
    ("93796005", "Primary malignant neoplasm of female breast"),
    ("93884005", "Primary malignant neoplasm of male breast"),
    ("93745008", "Primary malignant neoplasm of central portion of female breast"),
    ("94115006", "Primary malignant neoplasm of upper inner quadrant of female breast"),
    ("93874009", "Primary malignant neoplasm of lower inner quadrant of female breast"),
    ("94117003", "Primary malignant neoplasm of upper outer quadrant of female breast"),
    ("93876006", "Primary malignant neoplasm of lower outer quadrant of female breast"),
    ("93924008", "Primary malignant neoplasm of nipple of female breast"),
    ("93925009", "Primary malignant neoplasm of nipple of male breast"),
    ("93680004", "Primary malignant neoplasm of areola of female breast"),
    ("93681000", "Primary malignant neoplasm of areola of male breast"),
    ("93776002", "Primary malignant neoplasm of ectopic female breast tissue"),
    ("93777006", "Primary malignant neoplasm of ectopic male breast tissue"),
]

# Breast codes that are NOT a primary malignant neoplasm, code and display as published in the
# HL7 mCODE IG expansions (GitHub HL7/fhir-mCODE-ig, commit e3408d6f, SNOMED CT US 20210901):
# 94297009 in mcode-secondary-cancer-disorder-vs (is-a 128462008 Secondary malignant neoplastic
# disease); 189336000 in mcode-primary-cancer-disorder-vs, which takes it from
# mcode-carcinoma-in-situ-disorder-vs (is-a 109355002 Carcinoma in situ).
NOT_PRIMARY_MALIGNANT_BREAST: list[tuple[str, str]] = [
    ("94297009", "Secondary malignant neoplasm of female breast"),
    ("189336000", "Carcinoma in situ of breast"),
]


def _breast_cancer_snomed_concepts() -> dict[str, str | None]:
    path = resources.files("ruleset.data") / "valuesets" / "breast-cancer.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    concepts: dict[str, str | None] = {}
    for include in data["compose"]["include"]:
        if include["system"] == SNOMED:
            assert "filter" not in include  # listed one by one, never an is-a filter
            concepts.update({c["code"]: c.get("display") for c in include.get("concept", [])})
    return concepts


@pytest.mark.parametrize(("code", "display"), SNOMED_DESCENDANTS)
def test_snomed_descendant_is_listed_with_its_display_and_makes_eligible(
    code: str, display: str
) -> None:
    assert _breast_cancer_snomed_concepts()[code] == display
    assert "BREAST_CANCER" in sets(SNOMED, code)
    assert run(condition("c", code, SNOMED, onset="2020-01-01")).eligible is True


def test_every_snomed_addition_is_in_the_tested_list() -> None:
    added = set(_breast_cancer_snomed_concepts()) - TABLE_SNOMED_BREAST_CANCER
    assert added == {code for code, _ in SNOMED_DESCENDANTS}


@pytest.mark.parametrize(("code", "display"), NOT_PRIMARY_MALIGNANT_BREAST)
def test_secondary_or_in_situ_breast_code_does_not_make_eligible(code: str, display: str) -> None:
    assert code not in _breast_cancer_snomed_concepts(), display
    assert "BREAST_CANCER" not in sets(SNOMED, code)
    assert run(condition("c", code, SNOMED, onset="2020-01-01")).eligible is False
