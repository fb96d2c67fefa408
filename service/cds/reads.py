"""What a `patient-view` call reads: the patient's open alerts (always from this server's store:
a CDS answer is a read-only view of open episodes), and the records they cite, from the EHR's
`prefetch` when it sent them, else from the store.

Reads go through `service.interactions` with the calling client's principal, so a card shows
nothing the client's SMART scopes could not read through the API.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

import contract as c
from service import interactions
from service.cds.cards import OpenAlert, cited_references
from service.errors import FHIRError
from service.interactions import WriteContext
from service.web import extract as x
from service.web.worklist import search_all

JSON = dict[str, Any]
OPEN_STATUSES = ",".join(sorted(c.OPEN_COMMUNICATION_STATUSES))


def prefetched(prefetch: object) -> dict[str, JSON]:
    """Every resource of the prefetch by "Type/id": a prefetch value is a resource, a Bundle
    (searchset) of them, or null (the EHR could not fetch it)."""
    found: dict[str, JSON] = {}
    if not isinstance(prefetch, Mapping):
        return found

    def add(resource: object) -> None:
        if not isinstance(resource, Mapping):
            return
        rtype, rid = resource.get("resourceType"), resource.get("id")
        if rtype == "Bundle":
            for entry in resource.get("entry") or ():
                if isinstance(entry, Mapping):
                    add(entry.get("resource"))
        elif isinstance(rtype, str) and isinstance(rid, str) and rid:
            found[f"{rtype}/{rid}"] = dict(resource)

    for value in prefetch.values():
        add(value)
    return found


def _read(session: Session, ctx: WriteContext, ref: str) -> JSON | None:
    rtype, _, rid = ref.partition("/")
    if not rtype or not rid or "/" in rid:
        return None
    try:
        return interactions.read(session, ctx, rtype, rid).json()
    except FHIRError as exc:
        if exc.status in (404, 410):
            return None
        raise


def open_requests(session: Session, ctx: WriteContext, patient_id: str | None) -> list[JSON]:
    """Alert requests still asking someone to act (of one patient, or of everyone)."""
    items = [("status", OPEN_STATUSES), ("category", c.ALERT_CATEGORY_TOKEN)]
    if patient_id is not None:
        items.append(("patient", patient_id))
    return search_all(session, ctx, "CommunicationRequest", items)


def _flag(session: Session, ctx: WriteContext, request: Mapping[str, Any]) -> JSON | None:
    for about in request.get("about") or ():
        ref = x.reference(about)
        if ref and ref.startswith("Flag/"):
            return _read(session, ctx, ref)
    return None


def patient_alerts(
    session: Session, ctx: WriteContext, patient_id: str, prefetch: Mapping[str, JSON]
) -> tuple[JSON | None, list[OpenAlert]]:
    """(the patient, their open alerts with the cited records). The patient comes from the
    prefetch when given, else from the store; an unknown patient has no alerts."""
    patient = prefetch.get(f"Patient/{patient_id}") or _read(session, ctx, f"Patient/{patient_id}")
    requests = open_requests(session, ctx, patient_id)
    alerts = []
    for request in requests:
        if any(x.reference(b) for b in request.get("basedOn") or ()):
            continue  # an escalation of another request: that request has the card
        flag = _flag(session, ctx, request)
        if flag is not None and flag.get("status") != "active":
            continue  # its episode is closed; the worker revokes the request shortly
        evidence: dict[str, JSON | None] = {}
        for ref in cited_references(request, flag):
            evidence[ref] = prefetch.get(ref) or _read(session, ctx, ref)
        alerts.append(OpenAlert(request, flag, evidence))
    return patient, alerts
