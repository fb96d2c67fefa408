"""Calcium and ALP trends for one patient, and the geometry of their small SVG charts.

Everything clinical comes from the rule set (`ruleset/data/ruleset-v1.json`), the same
`RuleConfig` the engine judges with: which codes make a result calcium or ALP (the value sets),
which stream a code feeds (bone-specific ALP, LOINC 1777-2, is its own analyte: clinical-rules
§8), the unit each is drawn in and the factors to it (calcium mmol/L × 4.008 = mg/dL; ALP
µkat/L × 60 = U/L), and the default upper limit. So a mixed history reads as one line, and the
chart shows what the rules saw. The upper limit drawn is the newest result's referenceRange.high
when it has one (in the result's unit when it gives none), else the rule set's limit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from contract import ALP, CALCIUM_CORRECTED, CALCIUM_TOTAL
from ruleset import Analyte, RuleConfig
from service.web.extract import clinical_date, codes, parse_when

WINDOW = timedelta(days=365)
MAX_POINTS = 40
_NOT_RESULTS = frozenset({"entered-in-error", "cancelled", "registered"})
# The value sets charted, in page order: calcium (total and corrected), then ALP (total, and
# bone-specific as its own line). Ionized calcium is judged on its own scale and not drawn.
CHARTED_VALUE_SETS: tuple[str, ...] = (CALCIUM_TOTAL, CALCIUM_CORRECTED, ALP)
# Words for a stream's chart; a stream without words shows its value set's title.
_STREAM_NAMES = {"calcium": "Calcium", "alp": "ALP", "alp-bone": "Bone-specific ALP"}


@dataclass(frozen=True, slots=True)
class Point:
    when: datetime
    value: float


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    unit: str
    points: tuple[Point, ...]  # oldest first
    upper_limit: float


@dataclass(frozen=True, slots=True)
class _Line:
    """One stream the chart draws, and the analyte that says how to read its values."""

    stream: str
    analyte: Analyte


def _lines(config: RuleConfig) -> tuple[_Line, ...]:
    """The charted streams, in page order, each with its (first, most specific) analyte."""
    lines: dict[str, _Line] = {}
    for value_set in CHARTED_VALUE_SETS:
        analyte = config.analyte(value_set)
        for stream in (analyte.stream, *(s for _, s in analyte.stream_by_code)):
            lines.setdefault(stream, _Line(stream, analyte))
    return tuple(lines.values())


def _stream_of(obs: Mapping[str, Any], config: RuleConfig) -> str | None:
    """The charted stream an Observation feeds, as the engine reads it: the first analyte
    (rule-set order) whose value set holds one of its codings, then a code's own stream."""
    codings = codes(obs.get("code"))
    sets = frozenset(name for system, code in codings for name in config.index.lookup(system, code))
    analyte = next((a for a in config.analytes if a.value_set in sets), None)
    if analyte is None or analyte.value_set not in CHARTED_VALUE_SETS:
        return None
    for system, code in sorted(codings):
        own = analyte.stream_for(system, code)
        if own is not None:
            return own
    return analyte.stream


def _converted(quantity: object, analyte: Analyte, config: RuleConfig) -> float | None:
    """A valueQuantity (or referenceRange bound) in the analyte's unit, else None."""
    if not isinstance(quantity, Mapping) or not isinstance(quantity.get("value"), int | float):
        return None
    factor = config.units.factor(
        analyte.quantity, quantity.get("code"), quantity.get("unit"), analyte.unit
    )
    return None if factor is None else float(quantity["value"]) * factor


def _limit(obs: Mapping[str, Any], analyte: Analyte, config: RuleConfig, default: float) -> float:
    """The result's own referenceRange.high (in the value's unit when it names none), else the
    rule set's default limit."""
    value = obs.get("valueQuantity")
    for rng in obs.get("referenceRange") or ():
        high = rng.get("high") if isinstance(rng, Mapping) else None
        unitless = isinstance(high, Mapping) and not (high.get("code") or high.get("unit"))
        if unitless and isinstance(high, Mapping) and isinstance(value, Mapping):
            high = {**high, "code": value.get("code"), "unit": value.get("unit")}
        converted = _converted(high, analyte, config)
        if converted is not None:
            return converted
    return default


def _series(observations: Iterable[Mapping[str, Any]], line: _Line, config: RuleConfig) -> Series:
    found: list[tuple[Point, Mapping[str, Any]]] = []
    for obs in observations:
        if obs.get("status") in _NOT_RESULTS or _stream_of(obs, config) != line.stream:
            continue
        when = parse_when(clinical_date(obs))
        value = _converted(obs.get("valueQuantity"), line.analyte, config)
        if when is not None and value is not None:
            found.append((Point(when, value), obs))
    found.sort(key=lambda item: item[0].when)
    if found:
        newest = found[-1][0].when
        found = [f for f in found if f[0].when >= newest - WINDOW][-MAX_POINTS:]
    default = line.analyte.upper_limit
    if default is None:
        raise ValueError(f"rule set: charted analyte {line.analyte.value_set} has no upper limit")
    limit = _limit(found[-1][1], line.analyte, config, default) if found else default
    name = _STREAM_NAMES.get(line.stream) or config.title(line.analyte.value_set)
    return Series(name, line.analyte.unit, tuple(p for p, _ in found), limit)


def trend_series(
    observations: Iterable[Mapping[str, Any]], config: RuleConfig
) -> tuple[Series, ...]:
    """Every charted stream's series, in page order (calcium, ALP, bone-specific ALP)."""
    listed = list(observations)
    return tuple(_series(listed, line, config) for line in _lines(config))


def trend_search_codes(config: RuleConfig) -> str:
    """The `code` search value that finds every charted result of a patient."""
    wanted = sorted(
        f"{system}|{code}"
        for vs in config.value_sets
        if vs.name in CHARTED_VALUE_SETS
        for system, code in vs.codes
    )
    return ",".join(wanted)


# --- Chart geometry ---------------------------------------------------------------------------

WIDTH, HEIGHT = 260, 120
LEFT, RIGHT, TOP, BOTTOM = 44, 10, 10, 30


@dataclass(frozen=True, slots=True)
class Tick:
    y: float
    label: str


def nice_ticks(lo: float, hi: float, most: int = 5) -> tuple[float, ...]:
    """Round values (1, 2 or 5 × 10ⁿ apart) inside [lo, hi] for a labelled axis: the finest
    such spacing that gives at most `most` ticks."""
    if hi <= lo:
        return (lo,)
    magnitude = 10 ** math.floor(math.log10((hi - lo) / max(1, most)))
    for step in (m * magnitude * k for k in (1, 10, 100) for m in (1, 2, 5)):
        first = math.ceil(lo / step - 1e-9) * step
        count = int((hi - first) / step + 1e-9) + 1
        if count <= most:
            return tuple(round(first + i * step, 10) for i in range(count))
    return (lo, hi)


@dataclass(frozen=True, slots=True)
class Dot:
    x: float
    y: float
    label: str  # "2024-05-01: 11.2 mg/dL"
    high: bool


@dataclass(frozen=True, slots=True)
class Chart:
    series: Series
    dots: tuple[Dot, ...]
    line: str  # SVG polyline points
    limit_y: float
    y_top: str
    y_bottom: str
    x_first: str
    x_last: str
    description: str
    y_ticks: tuple[Tick, ...] = ()

    @property
    def single_value(self) -> str:
        """The one result, for a series too short to draw a line ("11.6 mg/dL")."""
        if not self.series.points:
            return ""
        value = self.series.points[-1].value
        return f"{_fmt(value, self.series.upper_limit)} {self.series.unit}"

    @property
    def limit_text(self) -> str:
        return f"{_fmt(self.series.upper_limit, self.series.upper_limit)} {self.series.unit}"

    @property
    def width(self) -> int:
        return WIDTH

    @property
    def height(self) -> int:
        return HEIGHT

    @property
    def plot_left(self) -> int:
        return LEFT

    @property
    def plot_right(self) -> int:
        return WIDTH - RIGHT

    @property
    def plot_bottom(self) -> int:
        return HEIGHT - BOTTOM


def _fmt(value: float, scale: float) -> str:
    """One decimal on a calcium-sized scale (mg/dL), none on an enzyme-sized one (U/L)."""
    return f"{value:.1f}" if abs(scale) < 50 else f"{value:.0f}"


def _describe(series: Series) -> str:
    scale = series.upper_limit
    limit = f"upper limit {_fmt(series.upper_limit, scale)} {series.unit}"
    if not series.points:
        return f"No results on record in the last year ({limit})."
    last = series.points[-1]
    state = "above" if last.value > series.upper_limit else "within"
    count = len(series.points)
    span = (
        f"{count} results from {series.points[0].when:%Y-%m-%d} to {last.when:%Y-%m-%d}"
        if count > 1
        else "1 result"
    )
    return (
        f"{span}; latest {_fmt(last.value, scale)} {series.unit} on {last.when:%Y-%m-%d}, "
        f"{state} the {limit}."
    )


def chart(series: Series) -> Chart:
    values = [p.value for p in series.points] + [series.upper_limit]
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.15 or max(abs(hi) * 0.1, 1.0)
    lo, hi = max(0.0, lo - pad), hi + pad
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def y(value: float) -> float:
        return round(TOP + plot_h * (hi - value) / (hi - lo), 1)

    points = series.points
    span = (points[-1].when - points[0].when).total_seconds() if points else 0.0

    def x(moment: datetime) -> float:
        if span <= 0:
            return round(LEFT + plot_w / 2, 1)
        return round(LEFT + plot_w * (moment - points[0].when).total_seconds() / span, 1)

    dots = tuple(
        Dot(
            x(p.when),
            y(p.value),
            f"{p.when:%Y-%m-%d}: {_fmt(p.value, series.upper_limit)} {series.unit}",
            p.value > series.upper_limit,
        )
        for p in points
    )
    return Chart(
        series=series,
        dots=dots,
        line=" ".join(f"{d.x},{d.y}" for d in dots),
        limit_y=y(series.upper_limit),
        y_top=_fmt(hi, series.upper_limit),
        y_bottom=_fmt(lo, series.upper_limit),
        x_first=f"{points[0].when:%Y-%m-%d}" if points else "",
        x_last=f"{points[-1].when:%Y-%m-%d}" if len(points) > 1 else "",
        description=_describe(series),
        y_ticks=tuple(Tick(y(t), _tick(t, hi - lo)) for t in nice_ticks(lo, hi, 5)),
    )


def _tick(value: float, span: float) -> str:
    return f"{value:g}" if span >= 5 else f"{value:.1f}"
