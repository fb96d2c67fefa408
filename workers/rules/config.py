"""The engine's name for the rule set, which lives in the `ruleset` package (data and loader).

Kept so `from workers.rules.config import RuleConfig` still works inside the engine; the
definitions are in `ruleset/config.py` and the numbers in `ruleset/data/ruleset-v1.json`.
"""

from ruleset.config import RULESET_VERSION, Analyte, DayWindow, RuleConfig, load_config

__all__ = ["RULESET_VERSION", "Analyte", "DayWindow", "RuleConfig", "load_config"]
