"""Which topic event a new version of an alert request is: a pure function of the version
before it (None when there is none) and the new one, so every writer (the worker's evaluation,
the deadline sweep, a nurse on the worklist, a FHIR client's PUT or PATCH) is judged alike.

How the service changes an alert request, and what each change is:

- created open (`active` / `on-hold`), or an ended one opened again: `alert-opened`, unless it
  is an escalation (its identifier system is `ESCALATION_IDENTIFIER_SYSTEM`): `alert-escalated`,
  or it replaces earlier requests (`replaces`; the worker re-issues an alert that way when its
  priority rises or its findings change): `alert-priority-changed`;
- open before and after with another `priority` (a client changed it in place):
  `alert-priority-changed`;
- open before, ended after (`completed`: acknowledged or dismissed; `revoked`: withdrawn or
  superseded; `entered-in-error`): `alert-closed`;
- anything else (snooze and wake, notes, a change to an ended request): no event.

Only CommunicationRequests have topics; Flags are not judged here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contract import ESCALATION_IDENTIFIER_SYSTEM, OPEN_COMMUNICATION_STATUSES
from contract.topics import (
    ALERT_CLOSED,
    ALERT_ESCALATED,
    ALERT_OPENED,
    ALERT_PRIORITY_CHANGED,
    TOPIC_RESOURCE_TYPE,
    TopicCode,
)

CLOSED_STATUSES = frozenset({"completed", "revoked", "entered-in-error"})


def _is_open(body: Mapping[str, Any] | None) -> bool:
    return body is not None and body.get("status") in OPEN_COMMUNICATION_STATUSES


def _is_escalation(body: Mapping[str, Any]) -> bool:
    return any(
        isinstance(i, Mapping) and i.get("system") == ESCALATION_IDENTIFIER_SYSTEM
        for i in body.get("identifier") or ()
    )


def _replaces(body: Mapping[str, Any]) -> bool:
    return any(isinstance(r, Mapping) and r.get("reference") for r in body.get("replaces") or ())


def topic_event(
    previous: Mapping[str, Any] | None, new: Mapping[str, Any], resource_type: str
) -> TopicCode | None:
    """The topic this version is an event of, or None."""
    if resource_type != TOPIC_RESOURCE_TYPE:
        return None
    if _is_open(new):
        if not _is_open(previous):
            if _is_escalation(new):
                return ALERT_ESCALATED
            if _replaces(new):
                return ALERT_PRIORITY_CHANGED
            return ALERT_OPENED
        assert previous is not None  # _is_open(previous)
        if previous.get("priority", "routine") != new.get("priority", "routine"):
            return ALERT_PRIORITY_CHANGED
        return None
    if _is_open(previous) and new.get("status") in CLOSED_STATUSES:
        return ALERT_CLOSED
    return None
