"""What a triage row needs beyond the alert itself: MRN, age and sex, the acknowledgement
deadline and how long is left, the recipient, and the filters. Pure, no I/O.

The deadline is the sweep's own rule, `contract.deadlines.deadline_of` (authoredOn, or the end of
the last snooze when later, plus the priority's `ALERTS_ACK_DEADLINES` entry), so "overdue" on
the page means "the sweep escalates it now".
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from contract import ESCALATION_IDENTIFIER_SYSTEM, ESCALATION_URL, Priority
from contract.deadlines import deadline_of
from service.web.extract import extensions, reference

MR_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0203"
STATUS_FILTERS = ("open", "snoozed", "escalated", "closed")
_SEX = {"female": "F", "male": "M", "other": "X", "unknown": "?"}


def mrn(patient: Mapping[str, Any] | None) -> str | None:
    """The medical record number: the identifier typed MR, else the first with a value."""
    if patient is None:
        return None
    found = [
        i for i in patient.get("identifier") or () if isinstance(i, Mapping) and i.get("value")
    ]
    for ident in found:
        for coding in (ident.get("type") or {}).get("coding") or ():
            if isinstance(coding, Mapping) and coding.get("code") == "MR":
                return str(ident["value"])
    return str(found[0]["value"]) if found else None


def age_years(birth: object, now: datetime) -> int | None:
    """Whole years from a FHIR birthDate (YYYY, YYYY-MM or YYYY-MM-DD) to `now`."""
    if not isinstance(birth, str) or len(birth) < 4:
        return None
    parts = birth[:10].split("-")
    try:
        born = date(
            int(parts[0]),
            int(parts[1]) if len(parts) > 1 else 1,
            int(parts[2]) if len(parts) > 2 else 1,
        )
    except ValueError:
        return None
    today = now.date()
    years = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    return years if years >= 0 else None


def age_sex(patient: Mapping[str, Any] | None, now: datetime) -> str:
    """ "62 y F": age at `now` and administrative sex, what is known of them."""
    if patient is None:
        return ""
    years = age_years(patient.get("birthDate"), now)
    sex = _SEX.get(str(patient.get("gender") or ""), "")
    return " ".join(p for p in (f"{years} y" if years is not None else "", sex) if p)


def ack_deadline(
    request: Mapping[str, Any], deadlines: Mapping[Priority, timedelta]
) -> datetime | None:
    """When the request must be acknowledged: the sweep's own rule (`contract.deadlines`)."""
    return deadline_of(request, deadlines)


def _span(seconds: float) -> str:
    """ "25 min", "1 h 05 min" (under two hours), "8 h", "3 days": short enough for a cell."""
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{max(minutes, 1)} min"
    if minutes < 120:
        return f"1 h {minutes - 60:02d} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // (24 * 60)} days"


def deadline_text(deadline: datetime | None, now: datetime) -> tuple[str, bool]:
    """ "1 h 05 min left" or "overdue 20 min", and whether it is overdue."""
    if deadline is None:
        return "", False
    left = (deadline - now).total_seconds()
    if left <= 0:
        return f"overdue {_span(-left)}", True
    return f"{_span(left)} left", False


def recipient_text(request: Mapping[str, Any]) -> str:
    """Who the request is addressed to, as a display or a reference."""
    names = []
    for item in request.get("recipient") or ():
        if isinstance(item, Mapping):
            names.append(str(item.get("display") or reference(item) or ""))
    return ", ".join(n for n in names if n)


def is_escalation(request: Mapping[str, Any]) -> bool:
    """An escalation request the deadline sweep made (its identifier names the missed one)."""
    return any(
        isinstance(i, Mapping) and i.get("system") == ESCALATION_IDENTIFIER_SYSTEM
        for i in request.get("identifier") or ()
    )


def escalated(flag: Mapping[str, Any], request_id: str | None) -> bool:
    """Whether the Flag records an escalation of this request (or any, without one)."""
    for ext in extensions(flag, ESCALATION_URL):
        if request_id is None:
            return True
        for part in ext.get("extension") or ():
            if (
                isinstance(part, Mapping)
                and part.get("url") == "request"
                and reference(part.get("valueReference")) == f"CommunicationRequest/{request_id}"
            ):
                return True
    return False
