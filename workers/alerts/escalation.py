"""Acknowledgement deadlines and escalation: an alert nobody acknowledges must not die quietly.

Pure decisions, like `episodes.decide`: the deadline sweep (workers/escalation.py) reads an
alert request, its episode's Flag and the escalation that may already exist, and asks
`decide_escalation` whether to escalate. `now` comes in, so tests (and a replay) control the
clock.

The rules:
- A request is due when it is still `active` (not acknowledged = `completed`, not snoozed =
  `on-hold`, not revoked) `deadline(priority)` after it was authored, or after the end of its
  last snooze if it was snoozed and has woken up (a snooze restarts the clock).
- Escalating makes a new CommunicationRequest to the escalation recipients, one priority step
  up (never beyond `stat`), `basedOn` the missed request and `about` it and the Flag, whose
  payload says what was missed and since when; and records the escalation on the Flag.
- Idempotent: the escalation's id and identifier are derived from the missed request's id and
  its deadline, so a second run (another process, after a restart) finds it and does nothing.
- Escalations are never escalated themselves (one escalation per deadline of an alert); once
  the missed request is acknowledged or ended, an escalation still open is revoked with a note,
  so the on-call list does not keep a request the team has already dealt with.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from contract import (
    ESCALATION_IDENTIFIER_SYSTEM,
    ESCALATION_URL,
    OPEN_COMMUNICATION_STATUSES,
    PRIORITY_ORDER,
    Priority,
)
from contract.deadlines import deadline_of, request_priority
from workers.alerts.fhir_output import fhir_datetime, without_store_meta
from workers.alerts.plan import Plan, ResourceWrite, stored_version
from workers.alerts.settings import AlertSettings

JSON = dict[str, Any]

# Fixed namespace: the same missed request and deadline always give the same escalation id.
_ESCALATION_NAMESPACE = uuid.UUID("0b6f3c1e-5d2a-4f8e-9a71-3c4e2d1f0a13")

EVENTS: tuple[str, ...] = (
    "deadline-escalated",  # a request missed its deadline: escalation made, Flag updated
    "escalation-withdrawn",  # the missed request was acknowledged: the open escalation revoked
)


@dataclass(frozen=True, slots=True)
class EscalationPolicy:
    """Deadlines per priority and who escalations go to (empty: the oncology team)."""

    deadlines: Mapping[Priority, timedelta]
    recipients: tuple[str, ...] = ()

    def recipients_or(self, settings: AlertSettings) -> tuple[str, ...]:
        return self.recipients or (settings.oncology_team,)


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware")


def next_priority(priority: Priority) -> Priority:
    """One step up routine < urgent < asap < stat, never beyond stat."""
    rank = PRIORITY_ORDER.index(priority)
    return PRIORITY_ORDER[min(rank + 1, len(PRIORITY_ORDER) - 1)]


def is_escalation(request: Mapping[str, Any]) -> bool:
    return any(
        isinstance(i, Mapping) and i.get("system") == ESCALATION_IDENTIFIER_SYSTEM
        for i in request.get("identifier") or ()
    )


def escalation_key(request_id: str, deadline: datetime) -> str:
    """The escalation identifier's value: the missed request and the deadline it missed."""
    return f"{request_id}@{fhir_datetime(deadline)}"


def escalation_id(request_id: str, deadline: datetime) -> str:
    """The escalation's resource id, derived, so two sweeps can never make two."""
    return str(uuid.uuid5(_ESCALATION_NAMESPACE, escalation_key(request_id, deadline)))


def escalated_request_reference(escalation: Mapping[str, Any]) -> str | None:
    """The request an escalation was made for (its basedOn)."""
    for based in escalation.get("basedOn") or ():
        ref = based.get("reference") if isinstance(based, Mapping) else None
        if isinstance(ref, str) and ref.startswith("CommunicationRequest/"):
            return ref
    return None


def _duration_words(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} seconds"


def _payload_text(request: Mapping[str, Any]) -> str:
    texts = [
        p["contentString"]
        for p in request.get("payload") or ()
        if isinstance(p, Mapping) and isinstance(p.get("contentString"), str)
    ]
    return " ".join(texts)


def build_escalation(
    request: Mapping[str, Any],
    flag: Mapping[str, Any],
    *,
    deadline: datetime,
    policy: EscalationPolicy,
    now: datetime,
    settings: AlertSettings,
) -> JSON:
    """The escalation CommunicationRequest for `request`, which missed `deadline`."""
    original_ref = f"CommunicationRequest/{request['id']}"
    priority = request_priority(request) or "routine"
    raised = next_priority(priority)
    authored = str(request.get("authoredOn"))
    waited = _duration_words(policy.deadlines[priority])
    step = f"priority raised from {priority} to {raised}" if raised != priority else "stat"
    text = (
        f"Escalation: alert {original_ref} ({priority}, raised {authored}) was not acknowledged "
        f"within its {waited} deadline; unacknowledged since {fhir_datetime(deadline)}. "
        f"Escalated {fhir_datetime(now)} ({step}). Please review it now and acknowledge the "
        "original alert."
    )
    device = {"reference": settings.device, "display": settings.device_display}
    escalation: JSON = {
        "resourceType": "CommunicationRequest",
        "id": escalation_id(str(request["id"]), deadline),
        "extension": [
            e
            for e in request.get("extension") or ()
            if isinstance(e, Mapping) and e.get("url") == settings.ruleset_extension_url
        ],
        "identifier": [
            {
                "system": ESCALATION_IDENTIFIER_SYSTEM,
                "value": escalation_key(str(request["id"]), deadline),
            }
        ],
        "basedOn": [{"reference": original_ref}],
    }
    if not escalation["extension"]:
        del escalation["extension"]
    if isinstance(request.get("groupIdentifier"), Mapping):
        escalation["groupIdentifier"] = dict(request["groupIdentifier"])
    payload: list[JSON] = [{"contentString": text}]
    original_text = _payload_text(request)
    if original_text:
        payload.append({"contentString": f"The missed alert said: {original_text}"})
    escalation |= {
        "status": "active",
        "category": list(request.get("category") or ()),
        "priority": raised,
        "subject": dict(request.get("subject") or flag.get("subject") or {}),
        "about": [
            {"reference": original_ref, "display": "Alert not acknowledged in time"},
            {"reference": f"Flag/{flag['id']}"},
        ],
        "payload": payload,
        "authoredOn": fhir_datetime(now),
        "requester": device,
        "recipient": [{"reference": r} for r in policy.recipients_or(settings)],
        "sender": device,
    }
    for key in ("reasonCode", "reasonReference"):
        if request.get(key):
            escalation[key] = list(request[key])
    if not escalation["category"]:
        del escalation["category"]
    if not escalation["subject"]:
        del escalation["subject"]
    return escalation


def _escalation_extension(
    original_ref: str, escalation: Mapping[str, Any], deadline: datetime, now: datetime
) -> JSON:
    return {
        "url": ESCALATION_URL,
        "extension": [
            {"url": "request", "valueReference": {"reference": original_ref}},
            {
                "url": "escalation",
                "valueReference": {"reference": f"CommunicationRequest/{escalation['id']}"},
            },
            {"url": "deadline", "valueDateTime": fhir_datetime(deadline)},
            {"url": "date", "valueDateTime": fhir_datetime(now)},
            {"url": "to", "valueCode": escalation["priority"]},
        ],
    }


def flag_with_escalation(
    flag: Mapping[str, Any],
    original_ref: str,
    escalation: Mapping[str, Any],
    *,
    deadline: datetime,
    now: datetime,
) -> JSON:
    """The Flag with one more escalation extension (after its own; foreign ones kept)."""
    body = without_store_meta(flag)
    body["extension"] = [
        *(e for e in body.get("extension") or () if isinstance(e, Mapping)),
        _escalation_extension(original_ref, escalation, deadline, now),
    ]
    return body


def recorded_escalations(flag: Mapping[str, Any]) -> list[str]:
    """The escalation references the Flag records, oldest first."""
    found: list[str] = []
    for ext in flag.get("extension") or ():
        if not isinstance(ext, Mapping) or ext.get("url") != ESCALATION_URL:
            continue
        for part in ext.get("extension") or ():
            if isinstance(part, Mapping) and part.get("url") == "escalation":
                ref = (part.get("valueReference") or {}).get("reference")
                if isinstance(ref, str):
                    found.append(ref)
    return found


def decide_escalation(
    request: Mapping[str, Any],
    flag: Mapping[str, Any] | None,
    *,
    stored_escalation: Mapping[str, Any] | None,
    policy: EscalationPolicy,
    now: datetime,
    settings: AlertSettings,
) -> Plan | None:
    """Escalate `request` (an alert request of an open episode, as stored) if it is overdue.

    `flag` is its episode's Flag as stored; `stored_escalation` what the store holds under
    `escalation_id(request id, deadline_of(request))` (None: not escalated yet). Returns None
    when nothing is to be done: acknowledged, snoozed or ended requests, closed episodes,
    requests not yet due, escalations themselves, and requests already escalated.
    """
    _require_aware(now)
    if is_escalation(request) or request.get("status") != "active":
        return None
    if flag is None or flag.get("status") != "active":
        return None
    deadline = deadline_of(request, policy.deadlines)
    if deadline is None or now < deadline or stored_escalation is not None:
        return None
    escalation = build_escalation(
        request, flag, deadline=deadline, policy=policy, now=now, settings=settings
    )
    original_ref = f"CommunicationRequest/{request['id']}"
    flag_write = ResourceWrite(
        "Flag",
        str(flag["id"]),
        flag_with_escalation(flag, original_ref, escalation, deadline=deadline, now=now),
        if_match=stored_version(flag),
    )
    return Plan(
        writes=(flag_write, ResourceWrite("CommunicationRequest", escalation["id"], escalation)),
        events=("deadline-escalated",),
    )


def decide_escalation_withdrawal(
    escalation: Mapping[str, Any],
    original: Mapping[str, Any] | None,
    *,
    now: datetime,
    settings: AlertSettings,
) -> ResourceWrite | None:
    """Revoke an open escalation once the request it was made for is no longer open
    (acknowledged, revoked, superseded) or is gone; None otherwise."""
    _require_aware(now)
    if not is_escalation(escalation):
        return None
    if escalation.get("status") not in OPEN_COMMUNICATION_STATUSES:
        return None
    status = None if original is None else original.get("status")
    if status in OPEN_COMMUNICATION_STATUSES:
        return None
    ref = escalated_request_reference(escalation) or "the original alert"
    why = f"{ref} was acknowledged" if status == "completed" else f"{ref} is {status or 'gone'}"
    body = without_store_meta(escalation)
    body["status"] = "revoked"
    body["statusReason"] = {"text": f"escalation no longer needed: {why}"}
    notes: Sequence[Any] = body.get("note") or ()
    body["note"] = [
        *(n for n in notes if isinstance(n, Mapping)),
        {
            "authorString": settings.device_display,
            "time": fhir_datetime(now),
            "text": f"Revoked by fhir-alerts: {why}.",
        },
    ]
    return ResourceWrite(
        "CommunicationRequest", str(escalation["id"]), body, if_match=stored_version(escalation)
    )


def decide_acknowledged_through_escalation(
    request: Mapping[str, Any],
    escalation: Mapping[str, Any] | None,
    *,
    now: datetime,
    settings: AlertSettings,
) -> ResourceWrite | None:
    """Complete the missed request once its escalation was acknowledged (`completed`): the
    first acknowledgement closes the loop, whichever of the two the team answered."""
    _require_aware(now)
    if escalation is None or escalation.get("status") != "completed":
        return None
    if is_escalation(request) or request.get("status") not in OPEN_COMMUNICATION_STATUSES:
        return None
    ref = f"CommunicationRequest/{escalation.get('id')}"
    body = without_store_meta(request)
    body["status"] = "completed"
    body["note"] = [
        *(n for n in body.get("note") or () if isinstance(n, Mapping)),
        {
            "authorString": settings.device_display,
            "time": fhir_datetime(now),
            "text": f"Acknowledged through its escalation {ref}.",
        },
    ]
    return ResourceWrite(
        "CommunicationRequest", str(request["id"]), body, if_match=stored_version(request)
    )
