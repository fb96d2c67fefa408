"""The rule set as data: value sets, units, windows, thresholds, upper limits, priorities and
recommended actions (`data/ruleset-v1.json` and `data/valuesets/`), and the loader that turns
them into one frozen `RuleConfig`.

This is where every clinical number lives. It does no clinical reasoning itself: the engine is
`workers.rules`, the alert life cycle `workers.alerts`, and the worklist's trend charts
(`service.web.trend`) draw with the same codes, limits and unit factors. Standard library only
(plus `contract`), so the service and the workers can both import it.
"""

from ruleset.config import RULESET_VERSION, Analyte, DayWindow, RuleConfig, load_config

__all__ = ["RULESET_VERSION", "Analyte", "DayWindow", "RuleConfig", "load_config"]
