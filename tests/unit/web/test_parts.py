"""The worklist's pure parts: the trends (codes, units and limits read from the rule set) and
words from FHIR JSON."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ruleset import load_config
from service.config import Settings
from service.web import extract, passwords
from service.web.trend import Series, chart, trend_search_codes, trend_series
from tests.builders import lab

RULES = load_config()


def calcium_series(observations: Iterable[Mapping[str, Any]]) -> Series:
    return trend_series(observations, RULES)[0]


def alp_series(observations: Iterable[Mapping[str, Any]]) -> Series:
    return trend_series(observations, RULES)[1]


def bone_alp_series(observations: Iterable[Mapping[str, Any]]) -> Series:
    return trend_series(observations, RULES)[2]


def test_calcium_is_drawn_in_mg_dl_with_the_default_or_reported_limit() -> None:
    observations = [
        lab("a", "p", "17861-6", 9.8, "mg/dL", "2024-01-10T08:00:00Z"),
        lab("b", "p", "2000-8", 2.9, "mmol/L", "2024-03-01T08:00:00Z"),
        lab("c", "p", "29265-6", 10.1, "mg/dL", "2024-02-01T08:00:00Z"),
        lab("d", "p", "17861-6", 99.0, "mg/dL", "2024-02-15T08:00:00Z", status="entered-in-error"),
        lab("e", "p", "6768-6", 300, "U/L", "2024-02-20T08:00:00Z"),  # ALP: not calcium
        lab("f", "p", "17861-6", 9.0, "g/L", "2024-02-21T08:00:00Z"),  # unknown unit: left out
    ]
    series = calcium_series(observations)
    assert [round(p.value, 3) for p in series.points] == [9.8, 10.1, 11.623]  # oldest first
    assert series.upper_limit == 10.5 and series.unit == "mg/dL"

    observations[1]["referenceRange"] = [{"high": {"value": 2.6, "unit": "mmol/L"}}]
    assert calcium_series(observations).upper_limit == pytest.approx(10.4208)


def test_alp_uses_u_per_l_and_the_reference_range_high() -> None:
    observations = [
        lab("a", "p", "6768-6", 120, "U/L", "2024-01-10"),
        lab("b", "p", "77141-0", 3.5, "ukat/L", "2024-02-10"),
        lab("c", "p", "6768-6", 160, "IU/L", "2024-03-10"),
    ]
    assert alp_series(observations).upper_limit == 147.0
    observations[2]["referenceRange"] = [
        {"low": {"value": 40}, "high": {"value": 129, "unit": "U/L"}}
    ]
    series = alp_series(observations)
    assert [p.value for p in series.points] == [120, 210, 160]
    assert series.upper_limit == 129


def test_bone_specific_alp_is_its_own_line_with_its_own_limit() -> None:
    """clinical-rules §8: bone-specific ALP (1777-2) is its own analyte, so it is not drawn on
    the total-ALP line; its limit is its own referenceRange.high, else the ALP default."""
    observations = [
        lab("total", "p", "6768-6", 120, "U/L", "2024-01-10"),
        lab("bone-1", "p", "1777-2", 15, "U/L", "2024-02-10"),
        lab("bone-2", "p", "1777-2", 22, "U/L", "2024-03-10"),
    ]
    total, bone = alp_series(observations), bone_alp_series(observations)
    assert [p.value for p in total.points] == [120]
    assert [p.value for p in bone.points] == [15, 22]
    assert (bone.name, bone.unit, bone.upper_limit) == ("Bone-specific ALP", "U/L", 147.0)
    observations[2]["referenceRange"] = [{"high": {"value": 20, "unit": "U/L"}}]
    assert bone_alp_series(observations).upper_limit == 20
    assert alp_series(observations).upper_limit == 147.0  # the total line keeps its own
    assert chart(bone_alp_series(observations)).dots[-1].high


def test_a_reference_range_high_without_a_unit_is_in_the_value_unit() -> None:
    """clinical-rules §8; a unitless high on a mmol/L result is mmol/L, drawn in mg/dL."""
    observations = [lab("a", "p", "2000-8", 2.5, "mmol/L", "2024-01-10")]
    observations[0]["referenceRange"] = [{"high": {"value": 2.6}}]
    assert calcium_series(observations).upper_limit == pytest.approx(2.6 * 4.008)


def test_codes_limits_and_units_come_from_the_rule_set() -> None:
    """The chart reads the RuleConfig it is given: another limit or unit factor in the rule set
    moves the chart with it, and the search asks for exactly the charted value sets' codes."""
    observations = [lab("a", "p", "2000-8", 2.5, "mmol/L", "2024-01-10")]
    calcium = RULES.analyte("CALCIUM_TOTAL")
    analytes = tuple(
        dataclasses.replace(a, upper_limit=9.0) if a is calcium else a for a in RULES.analytes
    )
    other = dataclasses.replace(RULES, analytes=analytes)
    assert trend_series(observations, other)[0].upper_limit == 9.0
    assert trend_series(observations, RULES)[0].upper_limit == 10.5
    searched = set(trend_search_codes(RULES).split(","))
    charted = ("CALCIUM_TOTAL", "CALCIUM_CORRECTED", "ALP")
    assert searched == {
        f"{system}|{code}"
        for vs in RULES.value_sets
        if vs.name in charted
        for system, code in vs.codes
    }
    assert "http://loinc.org|1777-2" in searched and "http://loinc.org|1994-3" not in searched


def test_chart_geometry_puts_high_values_above_the_limit_line() -> None:
    observations = [
        lab("a", "p", "17861-6", 9.5, "mg/dL", "2024-01-01T00:00:00Z"),
        lab("b", "p", "17861-6", 12.0, "mg/dL", "2024-06-01T00:00:00Z"),
    ]
    c = chart(calcium_series(observations))
    low, high = c.dots
    assert not low.high and high.high
    assert high.y < c.limit_y < low.y  # SVG y grows downwards
    assert low.x == c.plot_left and high.x == c.plot_right
    assert "latest 12.0 mg/dL on 2024-06-01, above the upper limit 10.5 mg/dL" in c.description
    empty = chart(calcium_series([]))
    assert empty.dots == () and "No results" in empty.description


def test_words_and_dates_from_fhir_json() -> None:
    assert extract.show_when("2024-05-01") == "2024-05-01"
    assert extract.show_when("2024-05-01T16:03:00+02:00") == "2024-05-01 14:03 UTC"
    assert extract.parse_when("2024-05") == datetime(2024, 5, 1, tzinfo=UTC)
    assert extract.parse_when("garbage") is None
    assert extract.patient_name({"name": [{"given": ["Ada", "K"], "family": "Lovelace"}]}) == (
        "Ada K Lovelace"
    )
    assert extract.patient_name(
        {
            "name": [
                {"use": "nickname", "text": "Addie"},
                {"use": "official", "text": "Ada Lovelace"},
            ]
        }
    ) == ("Ada Lovelace")
    assert extract.patient_name({"name": "not a list"}) is None
    assert extract.concept_text({"coding": [{"system": "http://loinc.org", "code": "2000-8"}]}) == (
        "LOINC 2000-8"
    )
    assert extract.observation_value(lab("a", "p", "x", 2.9, "mmol/L", "2024")) == "2.9 mmol/L"
    assert [extract.priority_rank(p) for p in ("stat", "asap", "urgent", "routine", "?")] == [
        0,
        1,
        2,
        3,
        4,
    ]


def test_worklist_users_setting() -> None:
    s = Settings(worklist_users=" nurse : pw1 , charge:a:b:c,broken,:nouser,nopass:")
    users = passwords.load(s)
    assert set(users.hashes) == {"nurse", "charge"}
    assert users.check("charge", "a:b:c")
    assert users.check("nurse", "pw1")
    assert not users.check("charge", "a:b")
    assert not users.check("nurse", "a:b:c")
    assert not users.check("nobody", "pw1")
    assert not passwords.Users().check("", "")


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_priority_badges_and_text_have_at_least_4_5_to_1_contrast() -> None:
    css = (Path(__file__).resolve().parents[3] / "service/web/static/worklist.css").read_text()
    var = dict(re.findall(r"--([\w-]+):\s*(#[0-9a-fA-F]{6})", css))
    pairs = [
        ("#ffffff", var["stat"]),
        ("#ffffff", var["asap"]),
        (var["ink"], var["urgent"]),  # the urgent badge has dark text
        ("#ffffff", var["routine"]),
        ("#ffffff", var["primary"]),
        (var["danger"], var["card"]),
        (var["muted"], var["card"]),
        (var["muted"], var["bg"]),
        (var["ink"], var["bg"]),
    ]
    for fg, bg in pairs:
        assert _contrast(fg, bg) >= 4.5, (fg, bg)
