"""`ALERTS_ACK_DEADLINES`: how long each priority may wait for an acknowledgement.

Pure parsing, no I/O: `stat=15m,asap=1h,urgent=4h,routine=3d` (units s, m, h, d) becomes a
mapping from every FHIR request priority to a timedelta. A value that would silently misroute
an escalation (an unknown priority, a missing unit, zero, a priority given twice) is refused
with a message that names the bad part, so the service stops at start instead.
Priorities left out keep their default, so `stat=5m` alone is a valid setting.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from datetime import timedelta
from types import MappingProxyType
from typing import Final, cast

from contract import PRIORITY_ORDER, Priority

DEFAULT_ACK_DEADLINES_TEXT: Final = "stat=15m,asap=1h,urgent=4h,routine=3d"

_UNITS: Final[Mapping[str, int]] = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_ITEM = re.compile(r"^\s*([a-z]+)\s*=\s*(\d+)\s*([a-z]*)\s*$")
# Longer than this is surely a typo (and would overflow date arithmetic long before it mattered).
_MAX: Final = timedelta(days=365)


def _parse_items(text: str) -> dict[Priority, timedelta]:
    found: dict[Priority, timedelta] = {}
    for raw in text.split(","):
        if not raw.strip():
            raise ValueError(f"empty entry in {text!r}; expected e.g. {DEFAULT_ACK_DEADLINES_TEXT}")
        match = _ITEM.match(raw.lower())
        if match is None:
            raise ValueError(
                f"{raw.strip()!r} is not PRIORITY=NUMBER+UNIT (e.g. stat=15m; units s, m, h, d)"
            )
        name, number, unit = match.groups()
        if name not in PRIORITY_ORDER:
            raise ValueError(f"unknown priority {name!r}; use {', '.join(PRIORITY_ORDER)}")
        if unit not in _UNITS:
            raise ValueError(f"{raw.strip()!r}: unit {unit or '(none)'!r} is not one of s, m, h, d")
        priority = cast(Priority, name)  # checked just above
        if priority in found:
            raise ValueError(f"priority {priority!r} is given twice")
        deadline = timedelta(seconds=int(number) * _UNITS[unit])
        if deadline <= timedelta(0):
            raise ValueError(f"{raw.strip()!r}: a deadline must be longer than zero")
        if deadline > _MAX:
            raise ValueError(f"{raw.strip()!r}: a deadline longer than 365 days is refused")
        found[priority] = deadline
    return found


DEFAULT_ACK_DEADLINES: Final[Mapping[Priority, timedelta]] = MappingProxyType(
    _parse_items(DEFAULT_ACK_DEADLINES_TEXT)
)


def parse_ack_deadlines(text: str) -> Mapping[Priority, timedelta]:
    """Every priority's acknowledgement deadline: the given ones, the defaults for the rest.

    A more pressing priority must not wait longer than a less pressing one (stat ≤ asap ≤
    urgent ≤ routine): otherwise raising an alert's priority would delay its escalation.
    """
    given = _parse_items(text) if text.strip() else {}
    merged = {p: given.get(p, DEFAULT_ACK_DEADLINES[p]) for p in PRIORITY_ORDER}
    for lower, higher in itertools.pairwise(PRIORITY_ORDER):
        if merged[higher] > merged[lower]:
            raise ValueError(
                f"{higher} ({merged[higher]}) would wait longer than {lower} ({merged[lower]}); "
                "a more pressing priority needs a shorter or equal deadline"
            )
    return MappingProxyType(merged)
