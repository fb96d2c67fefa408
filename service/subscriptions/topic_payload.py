"""The R4 shapes of topic-based notifications (Subscriptions R5 Backport IG), built from plain
values: no database, so the delivery attempt, `$status` and `$events` shape them alike.

- `status_parameters`: the SubscriptionStatus as a `Parameters` (profile
  `backport-subscription-status-r4`): subscription, topic (left out for `empty` payloads, as the
  IG advises), status, type (handshake | heartbeat | event-notification | query-status |
  query-event), events-since-subscription-start (a string in R4) and one notification-event per
  event (event-number, timestamp, and focus unless `empty`).
- `notification_bundle`: a `history` Bundle whose first entry is that Parameters, followed by
  one entry per event focus for `id-only` (request and response, no resource) and
  `full-resource` (with the stored version); none for `empty`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from service.subscriptions.channel import Content
from service.subscriptions.payload import Change, change_entry
from service.subscriptions.topic_subscription import (
    NOTIFICATION_PROFILE_URL,
    STATUS_PROFILE_URL,
)

# A fixed namespace: one notification's status entry has the same urn on every retry.
_ENTRY_NAMESPACE = uuid.UUID("6a0c5f1e-3b7d-4c2a-9e8f-1d2c3b4a5e6f")


@dataclass(frozen=True, slots=True)
class Event:
    number: int
    timestamp: str  # FHIR instant
    change: Change  # the focus version (its content is only sent as full-resource)


def _reference(change: Change, fhir_base: str | None) -> str:
    ref = f"{change.resource_type}/{change.resource_id}"
    return f"{fhir_base.rstrip('/')}/{ref}" if fhir_base else ref


def status_parameters(
    *,
    subscription_id: str,
    topic_url: str,
    status: str,
    kind: str,
    events_since_start: int,
    events: Sequence[Event] = (),
    content: Content,
    fhir_base: str | None = None,
    parameters_id: str | None = None,
) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": "subscription", "valueReference": {"reference": f"Subscription/{subscription_id}"}}
    ]
    if content is not Content.EMPTY:
        params.append({"name": "topic", "valueCanonical": topic_url})
    params += [
        {"name": "status", "valueCode": status},
        {"name": "type", "valueCode": kind},
        {"name": "events-since-subscription-start", "valueString": str(events_since_start)},
    ]
    for event in events:
        parts: list[dict[str, Any]] = [
            {"name": "event-number", "valueString": str(event.number)},
            {"name": "timestamp", "valueInstant": event.timestamp},
        ]
        if content is not Content.EMPTY:
            parts.append(
                {
                    "name": "focus",
                    "valueReference": {"reference": _reference(event.change, fhir_base)},
                }
            )
        params.append({"name": "notification-event", "part": parts})
    out: dict[str, Any] = {"resourceType": "Parameters"}
    if parameters_id is not None:
        out["id"] = parameters_id
    out["meta"] = {"profile": [STATUS_PROFILE_URL]}
    out["parameter"] = params
    return out


def notification_bundle(
    *,
    bundle_id: str,
    timestamp: str,
    subscription_id: str,
    topic_url: str,
    status: str,
    kind: str,
    events_since_start: int,
    events: Sequence[Event] = (),
    content: Content,
    fhir_base: str | None = None,
) -> dict[str, Any]:
    """The history Bundle: status first, then the focus entries."""
    status_id = str(uuid.uuid5(_ENTRY_NAMESPACE, bundle_id))
    first = {
        "fullUrl": f"urn:uuid:{status_id}",
        "resource": status_parameters(
            subscription_id=subscription_id,
            topic_url=topic_url,
            status=status,
            kind=kind,
            events_since_start=events_since_start,
            events=events,
            content=content,
            fhir_base=fhir_base,
            parameters_id=status_id,
        ),
        "request": {"method": "GET", "url": f"Subscription/{subscription_id}/$status"},
        "response": {"status": "200"},
    }
    entries = [first]
    if content is not Content.EMPTY:
        entries += [change_entry(content, e.change, fhir_base) for e in events]
    return {
        "resourceType": "Bundle",
        "id": bundle_id,
        "meta": {"profile": [NOTIFICATION_PROFILE_URL]},
        "type": "history",
        "timestamp": timestamp,
        "entry": entries,
    }
