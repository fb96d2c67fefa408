"""The worklist's pure parts: unit normalisation and limits for the trends, words from FHIR
JSON, and the strings it shares with the alert engine and the rule set."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from service.config import Settings
from service.web import codes, extract, passwords
from service.web.trend import ALP_CODES, CALCIUM_CODES, alp_series, calcium_series, chart
from tests.builders import lab

VALUESETS = Path(__file__).resolve().parents[2] / "workers" / "rules" / "data" / "valuesets"


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
        lab("c", "p", "1777-2", 160, "U/L", "2024-03-10"),
    ]
    assert alp_series(observations).upper_limit == 147.0
    observations[2]["referenceRange"] = [
        {"low": {"value": 40}, "high": {"value": 129, "unit": "U/L"}}
    ]
    series = alp_series(observations)
    assert [p.value for p in series.points] == [120, 210, 160]
    assert series.upper_limit == 129


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


def test_alert_strings_match_the_alert_engine() -> None:
    from workers.alerts import codes as engine

    assert codes.FLAG_CODE == engine.FLAG_CODE
    assert codes.ALERT_PRIORITY_URL == engine.ALERT_PRIORITY_URL
    assert codes.FINDING_EXTENSION_URL == engine.FINDING_EXTENSION_URL
    assert codes.RED_FLAG_EXTENSION_URL == engine.RED_FLAG_EXTENSION_URL
    assert codes.FLAG_DETAIL_URL == engine.FLAG_DETAIL_URL
    assert codes.COMMUNICATION_CATEGORY_SYSTEM == engine.COMMUNICATION_CATEGORY_SYSTEM
    assert codes.OPEN_COMMUNICATION_STATUSES == engine.OPEN_COMMUNICATION_STATUSES


def _loinc_codes(*names: str) -> set[str]:
    found: set[str] = set()
    for name in names:
        vs = json.loads((VALUESETS / name).read_text())
        for include in vs["compose"]["include"]:
            assert include["system"] == "http://loinc.org"
            found |= {c["code"] for c in include["concept"]}
    return found


def test_trend_codes_match_the_rule_set() -> None:
    assert _loinc_codes("calcium-total.json", "calcium-corrected.json") == CALCIUM_CODES
    assert _loinc_codes("alp.json") == ALP_CODES


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_priority_badges_and_text_have_at_least_4_5_to_1_contrast() -> None:
    css = (Path(__file__).resolve().parents[2] / "service/web/static/worklist.css").read_text()
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
