"""Laboratory histories: the latest value, its albumin correction, its baseline and limit.

Kept apart from the finding rules so each rule reads as the spec sentence it implements, and
so "latest", "baseline" and "upper limit" mean the same thing for calcium and ALP.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter

from contract import CALCIUM_CORRECTED, CALCIUM_TOTAL
from ruleset import RuleConfig
from workers.rules.records import Measurement, reference_high

_day = attrgetter("day")
_date = attrgetter("date")
_TOLERANCE = 1e-9  # float noise only: 10.0 × 1.1 must count as "at least 11.0"


def above(value: float, limit: float) -> bool:
    """Strictly above, immune to binary rounding noise."""
    return value > limit + _TOLERANCE * max(1.0, abs(limit))


def at_least(value: float, limit: float) -> bool:
    """At or above, immune to binary rounding noise."""
    return value >= limit - _TOLERANCE * max(1.0, abs(limit))


@dataclass(frozen=True, slots=True)
class Judged:
    """A value as the rules judge it (Payne-corrected when an albumin allowed it)."""

    measurement: Measurement
    value: float  # in the stream's unit
    albumin: Measurement | None = None  # the albumin used for the correction


@dataclass(frozen=True, slots=True)
class Baseline:
    """Median of the same analyte's values 31–365 days before the latest value."""

    value: float
    values: tuple[Judged, ...]  # oldest first


def merged(streams: Sequence[Sequence[Measurement]]) -> tuple[Measurement, ...]:
    """Several streams as one history, sorted by (date, reference)."""
    if len(streams) == 1:
        return tuple(streams[0])
    return tuple(sorted((m for s in streams for m in s), key=attrgetter("date", "ref")))


def nearest_albumin(
    measurement: Measurement, albumins: Sequence[Measurement], config: RuleConfig
) -> Measurement | None:
    """The albumin closest in time within the albumin window (either side, in UTC calendar
    days), if any; a tie in distance goes to the later one (clinical-rules §8: the newer
    result), then to the lower reference. O(log n): only the neighbours in time can be the
    closest."""
    at = measurement.date
    i = bisect_left(albumins, at, key=_date)
    candidates: list[Measurement] = []
    if i < len(albumins):
        candidates.append(albumins[i])  # the first at or after `at` (lowest reference)
    j = i - 1
    while j >= 0 and albumins[j].date == albumins[i - 1].date:
        candidates.append(albumins[j])  # the last instant before `at`, every reference
        j -= 1
    window = config.albumin_window_days
    near = [a for a in candidates if abs(a.day - measurement.day) <= window]
    if not near:
        return None
    return min(near, key=lambda a: (abs((a.date - at).total_seconds()), -a.date.timestamp(), a.ref))


def judge(measurement: Measurement, albumins: Sequence[Measurement], config: RuleConfig) -> Judged:
    """Total calcium gets the Payne correction when an albumin lies within the window; a
    laboratory-corrected or ionized calcium, or any other analyte, is used as is."""
    if measurement.kind != CALCIUM_TOTAL:
        return Judged(measurement, measurement.value)
    albumin = nearest_albumin(measurement, albumins, config)
    if albumin is None:
        return Judged(measurement, measurement.value)
    corrected = measurement.value + config.payne_factor * (
        config.payne_reference_albumin - albumin.value
    )
    return Judged(measurement, corrected, albumin)


def _preference(judged: Judged) -> int:
    """Among same-time values, the corrected calcium is the one the rules mean."""
    if judged.measurement.kind == CALCIUM_CORRECTED:
        return 2
    return 1 if judged.albumin is not None else 0


def latest(
    stream: Sequence[Measurement], albumins: Sequence[Measurement], config: RuleConfig
) -> Judged | None:
    """The newest value; several at the same instant → corrected first, then the higher."""
    if not stream:
        return None
    newest = stream[-1].date
    tied = [judge(m, albumins, config) for m in stream if m.date == newest]
    return max(tied, key=lambda j: (_preference(j), j.value, j.measurement.ref))


def baseline(
    stream: Sequence[Measurement],
    reference: Measurement,
    albumins: Sequence[Measurement],
    config: RuleConfig,
) -> Baseline | None:
    """Median of the stream's values dated within the baseline window before `reference`.

    Consumed values count: a baseline is history, not a trigger.
    """
    window = config.baseline_window
    lo = bisect_left(stream, reference.day - window.max_days, key=_day)
    hi = bisect_right(stream, reference.day - window.min_days, key=_day)
    if lo >= hi:
        return None
    values = tuple(judge(m, albumins, config) for m in stream[lo:hi])
    ordered = sorted(j.value for j in values)
    mid = len(ordered) // 2
    median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    return Baseline(median, values)


def upper_limit(measurement: Measurement, config: RuleConfig) -> tuple[float | None, str | None]:
    """The Observation's own referenceRange.high, else the rule set's default (may be None);
    with a note when the Observation's own limit could not be used."""
    own, note = reference_high(measurement, config)
    if own is not None:
        return own, None
    return config.analyte(measurement.kind).upper_limit, note
