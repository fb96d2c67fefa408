"""The acknowledgement deadline of an alert request, read one way by the deadline sweep (which
escalates at it) and by the worklist (which shows "overdue" from it): authoredOn, or the end of
the last snooze when that is later, plus the priority's allowance (`ALERTS_ACK_DEADLINES`).

Standard library only, like the rest of `contract`: `workers.alerts` and `service.web` both
import it, so "overdue" on the page always means "the sweep escalates it now".
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from contract import PRIORITY_ORDER, SNOOZE_UNTIL_URL, Priority


def instant(value: object) -> datetime | None:
    """A FHIR dateTime with a time zone, or None (a date alone or garbage is not a clock)."""
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def request_priority(request: Mapping[str, Any]) -> Priority | None:
    """The request's priority; FHIR reads an absent priority as routine."""
    value = request.get("priority", "routine")
    return value if value in PRIORITY_ORDER else None


def snooze_until(request: Mapping[str, Any]) -> datetime | None:
    """The end of the request's (last) snooze, from its snooze-until extension."""
    for ext in reversed(request.get("extension") or ()):
        if isinstance(ext, Mapping) and ext.get("url") == SNOOZE_UNTIL_URL:
            return instant(ext.get("valueDateTime"))
    return None


def deadline_of(
    request: Mapping[str, Any], deadlines: Mapping[Priority, timedelta]
) -> datetime | None:
    """When the request must have been acknowledged; None when that cannot be known (no
    authoredOn with a time zone, an unknown priority)."""
    authored = instant(request.get("authoredOn"))
    priority = request_priority(request)
    if authored is None or priority is None or priority not in deadlines:
        return None
    start = authored
    woke = snooze_until(request)
    if woke is not None and woke > start:
        start = woke
    return start + deadlines[priority]
