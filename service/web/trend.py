"""Calcium and ALP trends for one patient, and the geometry of their small SVG charts.

Values are put on one scale before they are drawn (calcium mg/dL, mmol/L × 4.008; ALP U/L,
µkat/L × 60), as the rule engine does, so a mixed history reads as one line. The upper limit
drawn is the newest result's referenceRange.high when it has one, else the rule set's limit.
The codes mirror the rule set's value sets (a test keeps them in step).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from service.web.extract import clinical_date, codes, parse_when

LOINC = "http://loinc.org"
# Total calcium (17861-6, 2000-8, 49765-1) and albumin-corrected calcium (29265-6, 46099-8).
CALCIUM_CODES = frozenset({"17861-6", "2000-8", "49765-1", "29265-6", "46099-8"})
ALP_CODES = frozenset({"6768-6", "77141-0", "1777-2"})
CALCIUM_LIMIT_MG_DL = 10.5
ALP_LIMIT_U_L = 147.0
WINDOW = timedelta(days=365)
MAX_POINTS = 40
_NOT_RESULTS = frozenset({"entered-in-error", "cancelled", "registered"})

Convert = Callable[[float, str], float | None]


def calcium_mg_dl(value: float, unit: str) -> float | None:
    unit = unit.lower()
    if unit == "mg/dl":
        return value
    if unit == "mmol/l":
        return value * 4.008
    return None


def alp_u_l(value: float, unit: str) -> float | None:
    unit = unit.lower().replace("µ", "u").replace("μ", "u")
    if unit in ("u/l", "iu/l", "[iu]/l"):
        return value
    if unit == "ukat/l":
        return value * 60
    return None


def _converted(quantity: object, convert: Convert) -> float | None:
    if not isinstance(quantity, Mapping) or not isinstance(quantity.get("value"), int | float):
        return None
    unit = str(quantity.get("code") or quantity.get("unit") or "")
    return convert(float(quantity["value"]), unit)


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


def _series(
    observations: Iterable[Mapping[str, Any]],
    wanted: frozenset[str],
    convert: Convert,
    *,
    name: str,
    unit: str,
    default_limit: float,
) -> Series:
    found: list[tuple[Point, Mapping[str, Any]]] = []
    for obs in observations:
        if obs.get("status") in _NOT_RESULTS:
            continue
        if not any(system == LOINC and code in wanted for system, code in codes(obs.get("code"))):
            continue
        when = parse_when(clinical_date(obs))
        value = _converted(obs.get("valueQuantity"), convert)
        if when is not None and value is not None:
            found.append((Point(when, value), obs))
    found.sort(key=lambda item: item[0].when)
    if found:
        newest = found[-1][0].when
        found = [f for f in found if f[0].when >= newest - WINDOW][-MAX_POINTS:]
    limit = default_limit
    if found:
        ranges = found[-1][1].get("referenceRange") or ()
        for rng in ranges:
            high = _converted(rng.get("high"), convert) if isinstance(rng, Mapping) else None
            if high is not None:
                limit = high
                break
    return Series(name, unit, tuple(p for p, _ in found), limit)


def calcium_series(observations: Iterable[Mapping[str, Any]]) -> Series:
    return _series(
        observations,
        CALCIUM_CODES,
        calcium_mg_dl,
        name="Calcium",
        unit="mg/dL",
        default_limit=CALCIUM_LIMIT_MG_DL,
    )


def alp_series(observations: Iterable[Mapping[str, Any]]) -> Series:
    return _series(
        observations,
        ALP_CODES,
        alp_u_l,
        name="ALP",
        unit="U/L",
        default_limit=ALP_LIMIT_U_L,
    )


def trend_search_codes() -> str:
    """The `code` search value that finds every calcium and ALP result of a patient."""
    return ",".join(f"{LOINC}|{c}" for c in sorted(CALCIUM_CODES | ALP_CODES))


# --- Chart geometry ---------------------------------------------------------------------------

WIDTH, HEIGHT = 260, 110
LEFT, RIGHT, TOP, BOTTOM = 40, 10, 10, 22


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
    )
