"""The body of a notification, shaped by the subscription's content level and nothing else.

- empty: no body at all (not even a Bundle), so nothing about the patient or the resource.
- id-only: a `history` Bundle whose one entry names the version (request.url, response.location
  and etag) and carries no resource.
- full-resource: the same Bundle with `entry.resource`, the stored version as the server has it.

`Bundle.id` is the delivery's uid and `Bundle.timestamp` the time of the change, so every retry
of one notification sends the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from service.subscriptions.channel import Content


@dataclass(frozen=True, slots=True)
class Change:
    """One stored version of an alert resource."""

    resource_type: str
    resource_id: str
    version_id: int
    last_updated: str  # FHIR instant
    created: bool  # version 1 (or re-created after a delete)
    content: bytes  # the stored JSON of that version


def change_entry(content: Content, change: Change, fhir_base: str | None = None) -> dict[str, Any]:
    """The history entry of one version: request, response and (full-resource) the resource.
    Plain notifications and topic event notifications share it."""
    ref = f"{change.resource_type}/{change.resource_id}"
    entry: dict[str, Any] = {}
    if fhir_base:
        entry["fullUrl"] = f"{fhir_base.rstrip('/')}/{ref}"
    if content is Content.FULL_RESOURCE:
        entry["resource"] = orjson.Fragment(change.content)
    entry["request"] = {"method": "POST" if change.created else "PUT", "url": ref}
    entry["response"] = {
        "status": "201 Created" if change.created else "200 OK",
        "location": f"{ref}/_history/{change.version_id}",
        "etag": f'W/"{change.version_id}"',
        "lastModified": change.last_updated,
    }
    return entry


def notification_body(
    content: Content, *, uid: str, timestamp: str, change: Change, fhir_base: str | None = None
) -> bytes:
    if content is Content.EMPTY:
        return b""
    bundle = {
        "resourceType": "Bundle",
        "id": uid,
        "type": "history",
        "timestamp": timestamp,
        "entry": [change_entry(content, change, fhir_base)],
    }
    return orjson.dumps(bundle)
