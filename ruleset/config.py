"""The rule set as data: value sets, units, windows, thresholds and priorities.

Every number of clinical-rules.md lives in data/ruleset-v1.json (and the value sets in
data/valuesets/), not in code: thresholds, windows, upper limits, unit factors and the
recommended actions are versioned with the rule set, and every alert records the version that
produced it. The file is read once per path and turned into a frozen `RuleConfig`; tests make
variants with `dataclasses.replace`.

Standard library only (plus `contract`): the rule engine (`workers.rules`), the alert life cycle
and the worklist's trend charts (`service.web`) all read the same `RuleConfig`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, cast

from contract import (
    FINDING_CODES,
    PRIORITY_ORDER,
    VALUE_SET_NAMES,
    FindingCode,
    Priority,
    priority_rank,
)
from ruleset.units import Conversion, UnitTable
from ruleset.valuesets import CodeIndex, ValueSetDef, value_set_from_fhir

RULESET_VERSION = "bone-mets-v1.1"
"""Version of the rule set shipped in data/ruleset-v1.json (recorded on every alert): v1 as
clarified by clinical-rules.md §8 (v1.1)."""

DEFAULT_RULESET = "ruleset-v1.json"


@dataclass(frozen=True, slots=True)
class DayWindow:
    """An inclusive range of whole days before a reference day, e.g. 31–365."""

    min_days: int
    max_days: int

    def holds(self, days_before: int) -> bool:
        return self.min_days <= days_before <= self.max_days


@dataclass(frozen=True, slots=True)
class Analyte:
    """How Observations of one value set become comparable numbers."""

    value_set: str  # "CALCIUM_TOTAL": the Observation.code set that makes a record this analyte
    stream: str  # values of one stream form one history: latest value and baseline
    quantity: str  # conversion family of its units ("calcium", "albumin", "enzyme", "score")
    unit: str  # canonical unit the values are judged in
    upper_limit: float | None  # default upper limit when the Observation has no usable one
    stream_by_code: tuple[tuple[str, str], ...] = ()  # ("system|code", stream) exceptions
    unit_optional: bool = False  # scores may come without a unit
    value_range: tuple[float, float] | None = None  # values outside are skipped with a note
    _streams: dict[tuple[object, object], str] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        streams: dict[tuple[object, object], str] = {}
        for key, stream in self.stream_by_code:
            system, _, code = key.rpartition("|")
            streams[(system, code)] = stream
        object.__setattr__(self, "_streams", streams)

    def stream_for(self, system: object, code: object) -> str | None:
        """The stream of a coding when it has its own (bone-specific ALP), else None."""
        return self._streams.get((system, code))


def _priority(value: object) -> Priority:
    for priority in PRIORITY_ORDER:
        if value == priority:
            return priority
    raise ValueError(f"unknown priority {value!r}")


def _finding_codes(values: object) -> frozenset[FindingCode]:
    codes = frozenset(cast(list[str], values))
    unknown = codes - set(FINDING_CODES)
    if unknown:
        raise ValueError(f"unknown finding codes {sorted(unknown)}")
    return cast(frozenset[FindingCode], codes)


@dataclass(frozen=True, slots=True)
class RuleConfig:
    """Everything a rule evaluation needs besides the records and the time."""

    version: str
    value_sets: tuple[ValueSetDef, ...]
    dotless_systems: frozenset[str]
    units: UnitTable
    analytes: tuple[Analyte, ...]  # first matching analyte wins, so order specific first
    # Windows, in UTC calendar days before T (or before the record they qualify).
    recent_days: int
    mscc_days: int
    new_back_pain_lookback: DayWindow
    baseline_window: DayWindow
    albumin_window_days: int
    pain_rise_days: int
    # Calcium.
    payne_factor: float
    payne_reference_albumin: float  # g/dL
    calcium_grade_bands: tuple[float, ...]  # mg/dL: above band k → grade k + 2
    ionized_grade_bands: tuple[float, ...]  # mmol/L
    rising_calcium_floor: float  # mg/dL
    rising_calcium_fraction: float  # 0.10 = 10 % above baseline
    # ALP.
    alp_above_limit_baseline_ratio: float
    alp_within_limit_baseline_ratio: float
    alp_urgent_limit_multiple: float
    # Pain.
    pain_rise_points: float
    # Priorities.
    priority_new_back_pain: Priority
    priority_suspected_mscc: Priority
    priority_rising_calcium: Priority
    priority_rising_alp: Priority
    priority_rising_alp_urgent: Priority
    hypercalcemia_priority_by_grade: tuple[Priority, ...]  # index = grade - 1
    known_metastasis_suppresses: frozenset[FindingCode]
    known_metastasis_min_hypercalcemia_grade: int
    combination_groups: tuple[tuple[str, frozenset[FindingCode]], ...]
    combination_min_groups: int
    combination_ceiling: Priority
    # Recommended actions (spec §6: what the team is asked to consider), per finding: pairs
    # (from priority, text) in rising order; the last whose priority is reached applies.
    recommended_actions: tuple[tuple[FindingCode, tuple[tuple[Priority, str], ...]], ...] = ()
    # The lead line when a combination raised the overall priority; "{priority}" is filled in.
    combination_action: str = ""
    index: CodeIndex = field(init=False, repr=False, compare=False, hash=False)
    _titles: dict[str, str] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        names = {vs.name for vs in self.value_sets}
        missing = VALUE_SET_NAMES - names
        if missing:
            raise ValueError(f"rule set lacks value sets {sorted(missing)}")
        for analyte in self.analytes:
            if analyte.value_set not in names:
                raise ValueError(f"analyte refers to unknown value set {analyte.value_set}")
        object.__setattr__(self, "index", CodeIndex(self.value_sets, self.dotless_systems))
        object.__setattr__(self, "_titles", {vs.name: vs.title for vs in self.value_sets})

    @property
    def lookback_days(self) -> int:
        """How far before T any rule looks, in days: the store may load Observations dated on
        or after T − lookback_days and no older (Conditions are always loaded in full).

        The furthest reach: a value at the edge of the recent window, its baseline 365 days
        before that, and the albumin within 2 days of the oldest baseline value.
        """
        return max(
            self.mscc_days,
            self.recent_days + self.albumin_window_days,
            self.recent_days + self.new_back_pain_lookback.max_days,
            self.recent_days + self.baseline_window.max_days + self.albumin_window_days,
            self.recent_days + self.pain_rise_days,
        )

    def recommended_action(self, code: FindingCode, priority: Priority) -> str:
        """What the team is asked to consider for one finding at its priority."""
        steps = dict(self.recommended_actions).get(code, ())
        chosen = ""
        for start, text in steps:
            if priority_rank(priority) >= priority_rank(start):
                chosen = text
        if not chosen:
            raise KeyError(f"the rule set has no recommended action for {code} at {priority}")
        return chosen

    def title(self, value_set: str) -> str:
        """Plain words for a value set ("back pain"), for alert texts."""
        return self._titles.get(value_set, value_set)

    def streams_of(self, *value_sets: str) -> tuple[str, ...]:
        """The value streams fed by the given analyte value sets, in a stable order."""
        streams: set[str] = set()
        for analyte in self.analytes:
            if analyte.value_set in value_sets:
                streams.add(analyte.stream)
                streams.update(stream for _, stream in analyte.stream_by_code)
        return tuple(sorted(streams))

    def analyte(self, value_set: str) -> Analyte:
        for analyte in self.analytes:
            if analyte.value_set == value_set:
                return analyte
        raise KeyError(value_set)


def config_from_data(data: Mapping[str, Any], value_sets: tuple[ValueSetDef, ...]) -> RuleConfig:
    """Build a RuleConfig from the parsed rule-set JSON and its value sets."""
    windows = data["windows"]
    calcium = data["calcium"]
    alp = data["alp"]
    prio = data["priorities"]
    kbm = data["known_bone_metastasis"]
    combination = data["combination"]
    units = data["units"]
    analytes = tuple(
        Analyte(
            value_set=str(a["value_set"]),
            stream=str(a["stream"]),
            quantity=str(a["quantity"]),
            unit=str(a["unit"]),
            upper_limit=None if a.get("upper_limit") is None else float(a["upper_limit"]),
            stream_by_code=tuple(
                sorted((str(k), str(v)) for k, v in a.get("stream_by_code", {}).items())
            ),
            unit_optional=bool(a.get("unit_optional", False)),
            value_range=(
                None
                if a.get("value_range") is None
                else (float(a["value_range"][0]), float(a["value_range"][1]))
            ),
        )
        for a in data["analytes"]
    )
    return RuleConfig(
        version=str(data["version"]),
        value_sets=value_sets,
        dotless_systems=frozenset(data["dotless_systems"]),
        units=UnitTable(
            aliases=tuple(sorted((str(k), str(v)) for k, v in units["aliases"].items())),
            conversions=tuple(
                Conversion(str(c["quantity"]), str(c["from"]), str(c["to"]), float(c["factor"]))
                for c in units["conversions"]
            ),
        ),
        analytes=analytes,
        recent_days=int(windows["recent_days"]),
        mscc_days=int(windows["mscc_days"]),
        new_back_pain_lookback=DayWindow(*map(int, windows["new_back_pain_lookback_days"])),
        baseline_window=DayWindow(*map(int, windows["baseline_days"])),
        albumin_window_days=int(windows["albumin_days"]),
        pain_rise_days=int(windows["pain_rise_days"]),
        payne_factor=float(calcium["payne_factor"]),
        payne_reference_albumin=float(calcium["payne_reference_albumin_g_dl"]),
        calcium_grade_bands=tuple(map(float, calcium["grade_bands_mg_dl"])),
        ionized_grade_bands=tuple(map(float, calcium["ionized_grade_bands_mmol_l"])),
        rising_calcium_floor=float(calcium["rising_floor_mg_dl"]),
        rising_calcium_fraction=float(calcium["rising_fraction"]),
        alp_above_limit_baseline_ratio=float(alp["above_limit_baseline_ratio"]),
        alp_within_limit_baseline_ratio=float(alp["within_limit_baseline_ratio"]),
        alp_urgent_limit_multiple=float(alp["urgent_limit_multiple"]),
        pain_rise_points=float(data["pain"]["rise_points"]),
        priority_new_back_pain=_priority(prio["new-back-pain"]),
        priority_suspected_mscc=_priority(prio["suspected-mscc"]),
        priority_rising_calcium=_priority(prio["rising-calcium"]),
        priority_rising_alp=_priority(prio["rising-alp"]),
        priority_rising_alp_urgent=_priority(prio["rising-alp-above-urgent-multiple"]),
        hypercalcemia_priority_by_grade=tuple(map(_priority, prio["hypercalcemia-by-grade"])),
        known_metastasis_suppresses=_finding_codes(kbm["suppresses"]),
        known_metastasis_min_hypercalcemia_grade=int(kbm["hypercalcemia_min_grade"]),
        combination_groups=tuple(
            (str(name), _finding_codes(codes)) for name, codes in combination["groups"].items()
        ),
        combination_min_groups=int(combination["min_groups"]),
        combination_ceiling=_priority(combination["ceiling"]),
        recommended_actions=_recommended_actions(data["recommended_actions"]["by_finding"]),
        combination_action=str(data["recommended_actions"]["combination"]),
    )


def _recommended_actions(
    data: Mapping[str, Any],
) -> tuple[tuple[FindingCode, tuple[tuple[Priority, str], ...]], ...]:
    """Per finding, (from priority, text) pairs in rising priority; each finding must have an
    action from `routine` up, so every priority it can reach has one."""
    codes = _finding_codes(list(data))
    if codes != set(FINDING_CODES):
        raise ValueError(f"recommended actions missing for {sorted(set(FINDING_CODES) - codes)}")
    out: list[tuple[FindingCode, tuple[tuple[Priority, str], ...]]] = []
    for code in FINDING_CODES:
        steps = tuple((_priority(start), str(text)) for start, text in data[code])
        ranks = [priority_rank(start) for start, _ in steps]
        if not steps or ranks[0] != 0 or ranks != sorted(set(ranks)):
            raise ValueError(f"recommended actions for {code}: rising priorities from routine")
        out.append((code, steps))
    return tuple(out)


def _read_json(node: Traversable) -> Any:
    return json.loads(node.read_text(encoding="utf-8"))


@lru_cache(maxsize=8)
def _load(path: str | None) -> RuleConfig:
    root: Traversable
    if path is None:
        root = resources.files("ruleset.data")
        ruleset = root / DEFAULT_RULESET
    else:
        ruleset = Path(path)
        root = ruleset.parent
    data = _read_json(ruleset)
    dotless = frozenset(data["dotless_systems"])
    value_sets = []
    for name, relative in data["value_sets"].items():
        node = root
        for part in str(relative).split("/"):
            node = node / part
        vs = value_set_from_fhir(_read_json(node), dotless)
        if vs.name != name:
            raise ValueError(f"{relative} holds ValueSet {vs.name}, expected {name}")
        value_sets.append(vs)
    return config_from_data(data, tuple(sorted(value_sets, key=lambda vs: vs.name)))


def load_config(path: str | Path | None = None) -> RuleConfig:
    """The rule set at `path` (a ruleset JSON file), or the shipped v1; read once, then cached."""
    return _load(None if path is None else str(Path(path).resolve()))
