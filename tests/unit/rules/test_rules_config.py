"""The rule set is data: every number of the spec is configuration, loaded once."""

from __future__ import annotations

import dataclasses
import json
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from contract import VALUE_SET_NAMES
from ruleset import DayWindow
from tests.builders.rules import albumin, back_pain, breast_cancer, calcium, codes, run
from workers.rules import RULESET_VERSION, RuleConfig, evaluate, load_config

CONFIG = load_config()


def test_public_api() -> None:
    import workers.rules as rules

    assert set(rules.__all__) == {"RULESET_VERSION", "RuleConfig", "evaluate", "load_config"}
    assert rules.evaluate is evaluate and isinstance(CONFIG, RuleConfig)


def test_loaded_once_and_frozen() -> None:
    assert load_config() is CONFIG
    with pytest.raises(dataclasses.FrozenInstanceError):
        CONFIG.recent_days = 1  # type: ignore[misc]


def test_spec_numbers_live_in_the_config() -> None:
    c = CONFIG
    assert (c.recent_days, c.mscc_days, c.albumin_window_days, c.pain_rise_days) == (30, 14, 2, 30)
    assert c.new_back_pain_lookback == DayWindow(31, 365) == c.baseline_window
    assert (c.payne_factor, c.payne_reference_albumin) == (0.8, 4.0)
    assert c.calcium_grade_bands == (11.5, 12.5, 13.5)
    assert c.ionized_grade_bands == (1.5, 1.6, 1.8)
    assert (c.rising_calcium_floor, c.rising_calcium_fraction) == (10.0, 0.10)
    assert (
        c.alp_above_limit_baseline_ratio,
        c.alp_within_limit_baseline_ratio,
        c.alp_urgent_limit_multiple,
    ) == (1.25, 1.5, 2.5)
    assert c.pain_rise_points == 2
    assert c.analyte("CALCIUM_TOTAL").upper_limit == 10.5
    assert c.analyte("CALCIUM_CORRECTED").upper_limit == 10.5
    assert c.analyte("CALCIUM_IONIZED").upper_limit == 1.32
    assert c.analyte("ALP").upper_limit == 147
    assert c.analyte("GGT").upper_limit is None  # the spec gives no default GGT limit
    assert c.hypercalcemia_priority_by_grade == ("urgent", "asap", "stat", "stat")
    assert c.known_metastasis_suppresses == {"new-back-pain", "rising-calcium", "rising-alp"}
    assert c.known_metastasis_min_hypercalcemia_grade == 2
    assert (c.priority_new_back_pain, c.priority_suspected_mscc) == ("urgent", "stat")
    assert (c.priority_rising_calcium, c.priority_rising_alp) == ("routine", "routine")
    assert c.priority_rising_alp_urgent == "urgent"


def test_lookback_is_the_furthest_any_rule_reaches() -> None:
    # recent window 30 + baseline 365 + albumin 2 days around the oldest baseline value.
    assert CONFIG.lookback_days == 397
    shorter = dataclasses.replace(CONFIG, baseline_window=DayWindow(31, 100))
    assert shorter.lookback_days == 30 + 365  # now the back-pain look-back reaches furthest


def test_old_observations_beyond_the_lookback_change_nothing() -> None:
    base = [breast_cancer(), calcium("b", 9.0, days=395), calcium("ca", 10.3, days=30)]
    assert codes(run(*base)) == ["rising-calcium"]  # the baseline value is 365 days before
    assert codes(run(*base, calcium("older", 20.0, days=398))) == ["rising-calcium"]


def test_the_albumin_of_the_oldest_baseline_value_is_within_the_lookback() -> None:
    # latest 30 days before T, baseline 365 days before that, its albumin 2 days earlier still.
    base = [breast_cancer(), calcium("b", 9.5, days=395), calcium("ca", 10.2, days=30)]
    assert run(*base).findings == ()  # 10.2 is 7 % above 9.5
    a = run(*base, albumin("alb", 5.0, days=397))  # baseline corrected to 8.7: a 17 % rise
    assert codes(a) == ["rising-calcium"]


def test_thresholds_come_from_the_config() -> None:
    stricter = dataclasses.replace(CONFIG, recent_days=7, calcium_grade_bands=(11.0, 12.0, 13.0))
    assert codes(run(breast_cancer(), back_pain("bp", 10), config=stricter)) == []
    a = run(breast_cancer(), calcium("ca", 11.2), config=stricter)
    assert a.findings[0].grade == 2


def test_a_custom_ruleset_file_loads_with_its_own_version(tmp_path: Path) -> None:
    source = resources.files("ruleset.data")
    target = tmp_path / "rules"
    shutil.copytree(str(source), target)
    data = json.loads((target / "ruleset-v1.json").read_text())
    data["version"] = "bone-mets-test"
    data["analytes"][1]["upper_limit"] = 12.0  # CALCIUM_TOTAL
    (target / "custom.json").write_text(json.dumps(data))
    custom = load_config(target / "custom.json")
    assert custom.version == "bone-mets-test" and custom is not CONFIG
    a = run(breast_cancer(), calcium("ca", 11.0), config=custom)
    assert a.ruleset_version == "bone-mets-test" and a.findings == ()
    assert run(breast_cancer(), calcium("ca", 11.0)).ruleset_version == RULESET_VERSION


def test_a_value_set_file_must_hold_the_named_set(tmp_path: Path) -> None:
    source = resources.files("ruleset.data")
    target = tmp_path / "rules"
    shutil.copytree(str(source), target)
    data = json.loads((target / "ruleset-v1.json").read_text())
    data["value_sets"]["BACK_PAIN"] = "valuesets/weight-loss.json"
    (target / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="expected BACK_PAIN"):
        load_config(target / "bad.json")


def _copy_ruleset(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    target = tmp_path / "rules"
    shutil.copytree(str(resources.files("ruleset.data")), target)
    return target, json.loads((target / "ruleset-v1.json").read_text())


def test_recommended_actions_are_rule_set_data(tmp_path: Path) -> None:
    """The words a team is asked to act on are versioned with the thresholds: a rule set with
    other words gives other actions, and each finding's action depends on its priority."""
    assert CONFIG.recommended_action("rising-alp", "routine").startswith("routine oncology")
    assert CONFIG.recommended_action("rising-alp", "asap").startswith("urgent oncology review")
    assert CONFIG.combination_action.format(priority="asap").startswith(
        "oncology review at asap priority"
    )
    target, data = _copy_ruleset(tmp_path)
    data["recommended_actions"]["by_finding"]["suspected-mscc"] = [["routine", "call the team"]]
    (target / "custom.json").write_text(json.dumps(data))
    custom = load_config(target / "custom.json")
    assert custom.recommended_action("suspected-mscc", "stat") == "call the team"


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (None, "recommended actions missing for \\['rising-alp'\\]"),
        ([["urgent", "x"]], "rising priorities from routine"),
        ([["routine", "x"], ["routine", "y"]], "rising priorities from routine"),
        ([["routine", "x"], ["high", "y"]], "unknown priority"),
    ],
)
def test_recommended_actions_must_cover_every_finding_and_priority(
    tmp_path: Path, steps: Any, message: str
) -> None:
    target, data = _copy_ruleset(tmp_path)
    by_finding = data["recommended_actions"]["by_finding"]
    if steps is None:
        del by_finding["rising-alp"]
    else:
        by_finding["rising-alp"] = steps
    (target / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=message):
        load_config(target / "bad.json")


def test_a_rule_set_must_define_every_value_set_the_contract_names(tmp_path: Path) -> None:
    target, data = _copy_ruleset(tmp_path)
    del data["value_sets"]["GGT"]
    (target / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="lacks value sets \\['GGT'\\]"):
        load_config(target / "bad.json")
    assert {vs.name for vs in CONFIG.value_sets} == VALUE_SET_NAMES
