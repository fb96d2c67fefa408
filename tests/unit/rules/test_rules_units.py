"""Units (clinical-rules.md §4): every conversion, every accepted spelling, and the refusals."""

from __future__ import annotations

import pytest

from ruleset.units import Conversion, UnitTable, safe_unit_text
from tests.builders.rules import (
    LOINC,
    T,
    alp,
    breast_cancer,
    calcium,
    finding,
    ionized,
    observation,
    run,
)
from workers.rules import load_config

UNITS = load_config().units


@pytest.mark.parametrize(
    ("quantity", "unit", "target", "factor"),
    [
        ("calcium", "mg/dL", "mg/dL", 1.0),
        ("calcium", "mmol/L", "mg/dL", 4.008),
        ("calcium", "mmol/L", "mmol/L", 1.0),
        ("calcium", "mg/dL", "mmol/L", 1 / 4.008),
        ("albumin", "g/dL", "g/dL", 1.0),
        ("albumin", "g/L", "g/dL", 0.1),
        ("enzyme", "U/L", "U/L", 1.0),
        ("enzyme", "IU/L", "U/L", 1.0),
        ("enzyme", "u/L", "U/L", 1.0),
        ("enzyme", "[iU]/L", "U/L", 1.0),
        ("enzyme", "[IU]/L", "U/L", 1.0),
        ("enzyme", "iu/l", "U/L", 1.0),
        ("enzyme", "ukat/L", "U/L", 60.0),
        ("enzyme", "\u00b5kat/L", "U/L", 60.0),  # micro sign
        ("enzyme", "\u03bckat/L", "U/L", 60.0),  # Greek mu
        ("calcium", "mg/dl", "mg/dL", 1.0),
        ("calcium", "MMOL/L", "mg/dL", 4.008),
        ("calcium", " mmol / L ", "mg/dL", 4.008),
    ],
)
def test_conversion_factors(quantity: str, unit: str, target: str, factor: float) -> None:
    assert UNITS.factor(quantity, unit, None, target) == pytest.approx(factor)


@pytest.mark.parametrize(
    ("quantity", "unit", "target"),
    [
        ("calcium", "g/dL", "mg/dL"),  # a real unit, wrong quantity
        ("albumin", "mg/dL", "g/dL"),
        ("albumin", "mmol/L", "g/dL"),
        ("enzyme", "mmol/L", "U/L"),
        ("enzyme", "kU/L", "U/L"),
        ("calcium", "mEq/L", "mg/dL"),
        ("calcium", "", "mg/dL"),
        ("calcium", None, "mg/dL"),
        ("calcium", 42, "mg/dL"),
    ],
)
def test_units_that_cannot_be_converted(quantity: str, unit: object, target: str) -> None:
    assert UNITS.factor(quantity, unit, None, target) is None


def test_ucum_code_first_then_the_unit_text() -> None:
    assert UNITS.factor("calcium", "mmol/L", "mg/dL", "mg/dL") == pytest.approx(4.008)
    assert UNITS.factor("calcium", None, "mmol/L", "mg/dL") == pytest.approx(4.008)
    assert UNITS.factor("calcium", "{unknown}", "mmol/L", "mg/dL") == pytest.approx(4.008)


def test_a_known_code_is_not_overruled_by_the_text() -> None:
    # The code says g/dL (not a calcium unit): the value is refused, not rescued by the text.
    assert UNITS.factor("calcium", "g/dL", "mg/dL", "mg/dL") is None


def test_inverse_conversions_are_derived_and_factors_must_be_positive() -> None:
    table = UnitTable(aliases=(("a", "A"), ("b", "B")), conversions=(Conversion("q", "A", "B", 2),))
    assert table.factor("q", "b", None, "A") == 0.5
    with pytest.raises(ValueError):
        UnitTable(aliases=(), conversions=(Conversion("q", "A", "B", 0),))


def test_log_text_of_a_unit_is_short_and_printable() -> None:
    assert safe_unit_text("mg/dL") == "mg/dL"
    assert safe_unit_text("x" * 50) == "x" * 20 + "…"
    assert safe_unit_text("a\nb") == "a?b"


# -- end to end -------------------------------------------------------------------------------


def test_calcium_in_mmol_per_litre_is_judged_in_mg_per_decilitre() -> None:
    a = run(breast_cancer(), calcium("ca", 3.0, unit="mmol/L"))
    found = finding(a, "hypercalcemia")
    assert found.value == pytest.approx(12.024)
    assert found.unit == "mg/dL"
    assert found.evidence[0].value == 3.0
    assert found.evidence[0].unit == "mmol/L"
    assert "3 mmol/L (12.024 mg/dL)" in found.evidence[0].display


def test_alp_in_microkatal_is_judged_in_units_per_litre() -> None:
    a = run(breast_cancer(), alp("a", 3.0, unit="ukat/L"))  # 180 U/L
    found = finding(a, "rising-alp")
    assert found.value == pytest.approx(180.0)
    assert found.unit == "U/L"


@pytest.mark.parametrize("unit", ["IU/L", "U/L", "u/L", "[iU]/L"])
def test_alp_spellings_all_count(unit: str) -> None:
    assert finding(run(breast_cancer(), alp("a", 200, unit=unit)), "rising-alp").value == 200


def test_ionized_calcium_in_mg_per_decilitre_is_judged_in_mmol_per_litre() -> None:
    a = run(breast_cancer(), ionized("i", 6.4, unit="mg/dL"))  # 1.597 mmol/L
    found = finding(a, "hypercalcemia")
    assert found.unit == "mmol/L"
    assert found.value == pytest.approx(6.4 / 4.008)
    assert found.grade == 2


def test_unit_text_is_used_when_there_is_no_code() -> None:
    resource = calcium("ca", 3.0, unit="mmol/L")
    resource["valueQuantity"] = {"value": 3.0, "unit": "mmol/l"}
    assert finding(run(breast_cancer(), resource), "hypercalcemia").value == pytest.approx(12.024)


@pytest.mark.parametrize("unit", ["mEq/L", "mg", "g/dL"])
def test_unconvertible_unit_skips_the_value_with_a_note(unit: str) -> None:
    a = run(breast_cancer(), calcium("ca", 14.2, unit=unit))
    assert a.findings == ()
    assert a.notes == (f"Observation/ca: unit {unit} cannot be converted to mg/dL; value not used",)


def test_missing_unit_skips_the_value_with_a_note() -> None:
    resource = observation("ca", "17861-6", system=LOINC, when=T.isoformat(), value=14.2)
    a = run(breast_cancer(), resource)
    assert a.findings == ()
    assert a.notes == ("Observation/ca: unit (none) cannot be converted to mg/dL; value not used",)


def test_notes_carry_no_value_and_no_name() -> None:
    resource = calcium("ca", 14.2, unit="mEq/L")
    resource["subject"] = {"reference": "Patient/p1", "display": "Jane Doe"}
    a = run(breast_cancer(), resource)
    text = " ".join(a.notes)
    assert "14.2" not in text and "Jane" not in text
    assert "Observation/ca" in text


def test_an_unconvertible_value_never_becomes_zero_or_hides_others() -> None:
    a = run(
        breast_cancer(),
        calcium("old", 9.0, days=1),
        calcium("bad", 99.0, unit="mEq/L"),  # newest, but unusable: not "latest"
    )
    assert a.findings == ()
    a = run(breast_cancer(), calcium("good", 12.0, days=1), calcium("bad", 1.0, unit="mEq/L"))
    assert finding(a, "hypercalcemia").evidence[0].reference == "Observation/good"
