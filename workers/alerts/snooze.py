"""Snoozed alerts: a request a nurse put `on-hold` until a time comes back `active` then.

A snooze is the CommunicationRequest set `on-hold` with a note holding the reason and the
`snooze-until` extension (contract.SNOOZE_UNTIL_URL) holding the expiry. The deadline sweep
(workers/escalation.py) calls `decide_wake` for each snoozed alert; waking keeps the
extension (it is when the acknowledgement clock restarted: see contract.deadlines.deadline_of) and
adds a note. Pure: `now` comes in.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from contract.deadlines import snooze_until
from workers.alerts.fhir_output import fhir_datetime, without_store_meta
from workers.alerts.plan import ResourceWrite
from workers.alerts.settings import AlertSettings


def decide_wake(
    request: Mapping[str, Any], *, now: datetime, settings: AlertSettings
) -> ResourceWrite | None:
    """The request made `active` again when its snooze has expired; None otherwise (not
    snoozed, no expiry recorded, or not yet expired)."""
    if now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware")
    if request.get("status") != "on-hold":
        return None
    until = snooze_until(request)
    if until is None or now < until:
        return None
    meta = request.get("meta")
    version = meta.get("versionId") if isinstance(meta, Mapping) else None
    if not isinstance(version, str):
        raise ValueError(f"stored CommunicationRequest/{request.get('id')} has no versionId")
    body = without_store_meta(request)
    body["status"] = "active"
    body.pop("statusReason", None)
    body["note"] = [
        *(n for n in body.get("note") or () if isinstance(n, Mapping)),
        {
            "authorString": settings.device_display,
            "time": fhir_datetime(now),
            "text": f"Snooze ended {fhir_datetime(until)}: the alert is active again.",
        },
    ]
    return ResourceWrite("CommunicationRequest", str(request["id"]), body, if_match=version)
