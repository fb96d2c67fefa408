"""The clinical rule engine: pure functions from a patient's FHIR records and a time to an
Assessment (findings, red flags, priority). No I/O: the worker, `$evaluate` and the CLI all
call `evaluate` with records they loaded themselves.
"""

from ruleset import RULESET_VERSION, RuleConfig, load_config
from workers.rules.engine import evaluate

__all__ = ["RULESET_VERSION", "RuleConfig", "evaluate", "load_config"]
