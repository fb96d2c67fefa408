"""§4 Units: ALP in U/L, IU/L and ukat/L (39), a value whose unit cannot be converted is not
used (44), a comparator keeps its number (45). The calcium factor 4.008 is used throughout §5.
"""

from __future__ import annotations

from .builders import Fixture, Section


def fx39_alp_units() -> Fixture:
    f = Fixture(
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
        "routine",
        ["rising-alp"],
        red_flags=[],
        evidence=[alp],
        note="3.5 ukat/L x 60 = 210 U/L > 147",
    )
    p = f.patient("b")
    p.breast_cancer()
    alp = p.alp(7.0, "ukat/L")
    p.alert(
        "urgent",
        ["rising-alp"],
        red_flags=[],
        evidence=[alp],
        note="7.0 ukat/L x 60 = 420 U/L > 367.5",
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
    return f


def fx44_unknown_unit() -> Fixture:
    f = Fixture(
        44,
        "unknown-unit",
        "A value whose unit cannot be converted is not used: calcium 6.0 'mEq/L' (no UCUM "
        "code) and ALP 400 'g' -> no alert; an unusable latest calcium leaves the earlier "
        "valid 12.0 mg/dL as the latest usable value -> asap.",
    )
    p = f.patient()
    p.breast_cancer()
    p.calcium(6.0, "mEq/L", ucum=None)
    p.no_alert(
        "6.0 mEq/L: no conversion rule for calcium in mEq/L (would be stat if read as mmol/L)"
    )
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
    return f


def fx45_comparator() -> Fixture:
    f = Fixture(
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
    return f


SECTION = Section(
    "§4 Units: conversions, unusable units and comparators",
    (
        fx39_alp_units,
        fx44_unknown_unit,
        fx45_comparator,
    ),
)
