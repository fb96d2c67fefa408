"""A nurse's snooze and dismiss, as changes to the stored CommunicationRequest (issue 13).

Pure: given the stored body, who acts and when, return the new body (None: nothing to do, the
request is no longer open). The worklist's actions (service/web/actions.py) apply them through
the FHIR update path; an EHR can make the same change with PUT/PATCH (docs/integrating.md).

- Snooze: `on-hold`, a note holding the reason, and the `snooze-until` extension holding the
  expiry; the deadline sweep makes it `active` again then (workers/alerts/snooze.py).
- Dismiss: `completed` with a coded `statusReason` from `contract.DISMISS_REASONS` (system
  `<code-system base>/dismiss-reason`, the list CDS Hooks' override reasons use too) and a note
  with the reason's words and the nurse's own text; reports count these codes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from contract import (
    CODE_SYSTEM_BASE,
    DISMISS_REASON_CODE_SYSTEM_NAME,
    DISMISS_REASONS,
    OPEN_COMMUNICATION_STATUSES,
    SNOOZE_UNTIL_URL,
)

DISMISS_REASON_SYSTEM: Final = f"{CODE_SYSTEM_BASE}/{DISMISS_REASON_CODE_SYSTEM_NAME}"
MAX_SNOOZE: Final = timedelta(days=7)
MAX_TEXT: Final = 500


def _instant(now: datetime) -> str:
    if now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware")
    return now.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _clean(text: str) -> str:
    return " ".join(text.split())[:MAX_TEXT]


def _notes(body: Mapping[str, Any]) -> list[Any]:
    return [n for n in body.get("note") or () if isinstance(n, Mapping)]


def snoozed(
    body: Mapping[str, Any], *, who: str, now: datetime, until: datetime, reason: str
) -> dict[str, Any] | None:
    """The request on hold until `until`; ValueError for a snooze that is not in the future,
    longer than MAX_SNOOZE, or without a reason."""
    if body.get("status") not in OPEN_COMMUNICATION_STATUSES:
        return None
    why = _clean(reason)
    if not why:
        raise ValueError("a snooze needs a reason")
    if until.tzinfo is None or until <= now:
        raise ValueError("a snooze must end in the future")
    if until - now > MAX_SNOOZE:
        raise ValueError("a snooze may last at most 7 days")
    extensions = [
        e
        for e in body.get("extension") or ()
        if isinstance(e, Mapping) and e.get("url") != SNOOZE_UNTIL_URL
    ]
    extensions.append({"url": SNOOZE_UNTIL_URL, "valueDateTime": _instant(until)})
    note = {
        "authorString": who,
        "time": _instant(now),
        "text": f"Snoozed until {_instant(until)}: {why}",
    }
    return {
        **body,
        "extension": extensions,
        "status": "on-hold",
        "statusReason": {"text": "snoozed"},
        "note": [*_notes(body), note],
    }


def dismissed(
    body: Mapping[str, Any], *, who: str, now: datetime, reason: str, text: str = ""
) -> dict[str, Any] | None:
    """The request closed (`completed`) with a coded dismiss reason; ValueError for a code not
    in contract.DISMISS_REASONS, or `other` without text."""
    if body.get("status") not in OPEN_COMMUNICATION_STATUSES:
        return None
    if reason not in DISMISS_REASONS:
        raise ValueError(f"unknown dismiss reason; use one of {', '.join(DISMISS_REASONS)}")
    words = DISMISS_REASONS[reason]  # type: ignore[index]  # checked just above
    extra = _clean(text)
    if reason == "other" and not extra:
        raise ValueError("the reason 'other' needs a text")
    status_reason = {
        "coding": [{"system": DISMISS_REASON_SYSTEM, "code": reason, "display": words}],
        "text": extra or words,
    }
    note = {
        "authorString": who,
        "time": _instant(now),
        "text": f"Dismissed: {words}" + (f". {extra}" if extra else ""),
    }
    return {
        **body,
        "status": "completed",
        "statusReason": status_reason,
        "note": [*_notes(body), note],
    }


def dismiss_reason(body: Mapping[str, Any]) -> str | None:
    """The dismiss-reason code a closed request carries (None: not dismissed)."""
    reason = body.get("statusReason")
    for coding in reason.get("coding") or () if isinstance(reason, Mapping) else ():
        if isinstance(coding, Mapping) and coding.get("system") == DISMISS_REASON_SYSTEM:
            code = coding.get("code")
            return code if isinstance(code, str) else None
    return None
