"""Subscription bodies (rest-hook channel, payload content, signing secret), and the alert
requests they notify about."""

from __future__ import annotations

from typing import Any

from service.subscriptions.channel import PAYLOAD_CONTENT_URL, SECRET_URL

SECRET = "test-hook-secret-0123456789"


def subscription(
    endpoint: str,
    criteria: str = "CommunicationRequest?priority=urgent,asap,stat",
    *,
    content: str | None = "full-resource",
    secret: str | None = SECRET,
    status: str = "requested",
    **extra: Any,
) -> dict[str, Any]:
    channel: dict[str, Any] = {"type": "rest-hook", "endpoint": endpoint}
    if content is not None:
        channel["payload"] = "application/fhir+json"
        channel["_payload"] = {"extension": [{"url": PAYLOAD_CONTENT_URL, "valueCode": content}]}
    if secret is not None:
        channel["extension"] = [{"url": SECRET_URL, "valueString": secret}]
    return {
        "resourceType": "Subscription",
        "status": status,
        "reason": "Page the oncology nurse on urgent bone-metastasis alerts",
        "criteria": criteria,
        "channel": channel,
        **extra,
    }


def alert_request(
    cid: str, patient: str, *, status: str = "active", priority: str = "stat", **extra: Any
) -> dict[str, Any]:
    """A CommunicationRequest as the worker writes one for an alert: what the subscription
    tests store to make notifications."""
    return {
        "resourceType": "CommunicationRequest",
        "id": cid,
        "status": status,
        "priority": priority,
        "subject": {"reference": f"Patient/{patient}"},
        **extra,
    }
