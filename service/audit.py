"""Who did what to an alert: a FHIR R4 AuditEvent per acknowledgement, snooze, dismissal,
close and escalation (issue 13).

`alert_action` (pure) reads a Flag or CommunicationRequest write as the store sees it
(previous and new body) and names the action, or None for every other write. The API's write
path (`interactions._write`, so PUT, PATCH, Bundles and the worklist alike) and the deadline
sweep (workers/escalation.py) call `record`, which stores the AuditEvent in the same
transaction as the change: a change is never committed without its audit record.

AuditEvents are the server's own: the API serves them read-only (`GET /fhir/AuditEvent`,
search by entity, patient, agent, date, action; scope `system/AuditEvent.read`).
The agent is the signed-in worklist user or the token's client (its `sub`), the entity the
alert version written (and the patient), the outcome success. No clinical content is copied.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal

from sqlalchemy.orm import Session

from contract import CODE_SYSTEM_BASE, ESCALATION_IDENTIFIER_SYSTEM, OPEN_COMMUNICATION_STATUSES
from service.alert_changes import dismiss_reason

AlertAction = Literal["acknowledge", "snooze", "dismiss", "close", "escalate"]

ACTION_SYSTEM: Final = f"{CODE_SYSTEM_BASE}/alert-action"
AGENT_SYSTEM: Final = "https://fhir-alerts.example.org/fhir/agent"  # user names, client ids
SERVICE_AGENT: Final = "fhir-alerts"  # the service itself (escalations by the deadline sweep)
_ACTION_WORDS: Final[Mapping[AlertAction, tuple[str, str]]] = {
    # action: (display, FHIR AuditEvent.action: C create, U update)
    "acknowledge": ("Alert acknowledged", "U"),
    "snooze": ("Alert snoozed", "U"),
    "dismiss": ("Alert dismissed with a reason", "U"),
    "close": ("Alert closed", "U"),
    "escalate": ("Alert escalated after its acknowledgement deadline", "C"),
}


def _status(body: Mapping[str, Any] | None) -> object:
    return None if body is None else body.get("status")


def alert_action(
    resource_type: str, previous: Mapping[str, Any] | None, new: Mapping[str, Any]
) -> AlertAction | None:
    """The alert action a write is, if any. Pure."""
    if resource_type == "CommunicationRequest":
        if previous is None:
            escalation = any(
                isinstance(i, Mapping) and i.get("system") == ESCALATION_IDENTIFIER_SYSTEM
                for i in new.get("identifier") or ()
            )
            return "escalate" if escalation else None
        was, now = _status(previous), _status(new)
        if was not in OPEN_COMMUNICATION_STATUSES or was == now:
            return None
        if now == "completed":
            return "dismiss" if dismiss_reason(new) else "acknowledge"
        if now == "on-hold":
            return "snooze"
        return None
    closing = _status(previous) == "active" and _status(new) in ("inactive", "entered-in-error")
    return "close" if resource_type == "Flag" and closing else None


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def audit_event(
    action: AlertAction,
    *,
    agent: str,
    entity: str,
    version: int,
    patient: str | None,
    now: datetime,
    event_id: str,
    detail: str | None = None,
) -> dict[str, Any]:
    """The AuditEvent body (R4). `entity` is "Type/id", `version` the version written."""
    display, code = _ACTION_WORDS[action]
    is_service = agent == SERVICE_AGENT
    who: dict[str, Any] = (
        {"reference": "Device/fhir-alerts", "display": "fhir-alerts"}
        if is_service
        else {"identifier": {"system": AGENT_SYSTEM, "value": agent}, "display": agent}
    )
    entities: list[dict[str, Any]] = [
        {
            "what": {"reference": f"{entity}/_history/{version}"},
            "type": {
                "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                "code": "2",
                "display": "System Object",
            },
            "role": {
                "system": "http://terminology.hl7.org/CodeSystem/object-role",
                "code": "4",
                "display": "Domain Resource",
            },
            **({"description": detail} if detail else {}),
        }
    ]
    if patient:
        entities.append(
            {
                "what": {"reference": f"Patient/{patient}"},
                "type": {
                    "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                    "code": "1",
                    "display": "Person",
                },
                "role": {
                    "system": "http://terminology.hl7.org/CodeSystem/object-role",
                    "code": "1",
                    "display": "Patient",
                },
            }
        )
    return {
        "resourceType": "AuditEvent",
        "id": event_id,
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "code": "rest",
            "display": "RESTful Operation",
        },
        "subtype": [{"system": ACTION_SYSTEM, "code": action, "display": display}],
        "action": code,
        "recorded": _instant(now),
        "outcome": "0",
        "outcomeDesc": display,
        "agent": [{"who": who, "requestor": True}],
        "source": {"observer": {"reference": "Device/fhir-alerts", "display": "fhir-alerts"}},
        "entity": entities,
    }


def record(
    session: Session,
    *,
    agent: str,
    resource_type: str,
    resource_id: str,
    version: int,
    previous: Mapping[str, Any] | None,
    new: Mapping[str, Any],
    patient: str | None,
    now: datetime | None = None,
) -> str | None:
    """Store the AuditEvent for this write when it is an alert action; its id, else None."""
    action = alert_action(resource_type, previous, new)
    if action is None:
        return None
    from service.store import resources as store

    moment = now or datetime.now(UTC)
    detail = dismiss_reason(new) if action == "dismiss" else None
    event_id = str(uuid.uuid4())
    body = audit_event(
        action,
        agent=agent,
        entity=f"{resource_type}/{resource_id}",
        version=version,
        patient=patient,
        now=moment,
        event_id=event_id,
        detail=f"dismiss reason: {detail}" if detail else None,
    )
    store.save(
        session, resource_type="AuditEvent", resource_id=event_id, resource=body, current=None
    )
    return event_id
