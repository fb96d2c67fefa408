"""Where a patient's records fall relative to an evaluation time: the numbers a tool prints so
that judging old test data at "now" is never silent (an empty result with exit 0 reads as
"nothing to alert", when really every record was too old to be looked at).

Pure: the same clinical dates the rules use (records.py), counted in UTC calendar days.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from ruleset import RuleConfig
from workers.rules.dates import as_utc, first_date


@dataclass(frozen=True, slots=True)
class WindowCount:
    """Dated Conditions and Observations, by where their clinical date falls."""

    dated: int  # with a usable clinical date
    recent: int  # in the recent window [T - recent_days, T]
    older: int  # before the look-back window (T - lookback_days): no rule can reach them
    after: int  # dated after T: ignored (clinical-rules §8)
    lookback_start: date  # first UTC day of the look-back window
    recent_days: int
    lookback_days: int


def clinical_date(resource: Mapping[str, Any]) -> datetime | None:
    """A Condition's onset[x] else recordedDate; an Observation's effective[x] else issued."""
    rtype = resource.get("resourceType")
    if rtype == "Condition":
        period = resource.get("onsetPeriod")
        return first_date(
            resource.get("onsetDateTime"),
            period.get("start") if isinstance(period, Mapping) else None,
            resource.get("recordedDate"),
        )
    if rtype == "Observation":
        period = resource.get("effectivePeriod")
        return first_date(
            resource.get("effectiveDateTime"),
            period.get("start") if isinstance(period, Mapping) else None,
            resource.get("effectiveInstant"),
            resource.get("issued"),
        )
    return None


def window_count(
    resources: Iterable[Mapping[str, Any]], at: datetime, config: RuleConfig
) -> WindowCount:
    moment = as_utc(at)
    today = moment.toordinal()
    dated = recent = older = after = 0
    for resource in resources:
        when = clinical_date(resource)
        if when is None:
            continue
        dated += 1
        if when > moment:
            after += 1
            continue
        age = today - when.toordinal()
        if age > config.lookback_days:
            older += 1
        elif age <= config.recent_days:
            recent += 1
    return WindowCount(
        dated=dated,
        recent=recent,
        older=older,
        after=after,
        lookback_start=(moment - timedelta(days=config.lookback_days)).date(),
        recent_days=config.recent_days,
        lookback_days=config.lookback_days,
    )
