"""Topic-based Subscription bodies and readers of the notifications a test receiver got."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from contract.topics import TopicCode, topic_url
from service.subscriptions.channel import PAYLOAD_CONTENT_URL
from service.subscriptions.topic_subscription import (
    FILTER_CRITERIA_URL,
    HEARTBEAT_PERIOD_URL,
    PROFILE_URL,
    TIMEOUT_URL,
)
from tests.api.subscriptions.receiver import Received, Receiver


def topic_subscription(
    endpoint: str,
    topic: TopicCode,
    *,
    content: str = "full-resource",
    filters: Sequence[str] = (),
    heartbeat: int | None = None,
    status: str = "requested",
) -> dict[str, Any]:
    extensions: list[dict[str, Any]] = [{"url": TIMEOUT_URL, "valueUnsignedInt": 5}]
    if heartbeat is not None:
        extensions.append({"url": HEARTBEAT_PERIOD_URL, "valueUnsignedInt": heartbeat})
    body: dict[str, Any] = {
        "resourceType": "Subscription",
        "meta": {"profile": [PROFILE_URL]},
        "status": status,
        "reason": f"Tell the pager about {topic}",
        "criteria": topic_url(topic),
        "channel": {
            "type": "rest-hook",
            "endpoint": endpoint,
            "extension": extensions,
            "payload": "application/fhir+json",
            "_payload": {"extension": [{"url": PAYLOAD_CONTENT_URL, "valueCode": content}]},
        },
    }
    if filters:
        body["_criteria"] = {
            "extension": [{"url": FILTER_CRITERIA_URL, "valueString": f} for f in filters]
        }
    return body


def bundles(receiver: Receiver, sid: str) -> list[dict[str, Any]]:
    """Every notification Bundle the receiver accepted for this subscription, in order."""
    return [orjson.loads(r.body) for r in for_subscription(receiver.accepted(), sid)]


def for_subscription(received: list[Received], sid: str) -> list[Received]:
    return [r for r in received if r.headers["x-fhir-alerts-subscription"] == f"Subscription/{sid}"]


def status_of(bundle: dict[str, Any]) -> dict[str, Any]:
    """The SubscriptionStatus parameters by name (notification-event: a list of part dicts)."""
    params = bundle["entry"][0]["resource"]["parameter"]
    out: dict[str, Any] = {"notification-event": []}
    for p in params:
        if p["name"] == "notification-event":
            out["notification-event"].append({part["name"]: _value(part) for part in p["part"]})
        else:
            out[p["name"]] = _value(p)
    return out


def _value(param: dict[str, Any]) -> Any:
    for key, value in param.items():
        if key.startswith("value"):
            return value["reference"] if key == "valueReference" else value
    return None


def of_type(receiver: Receiver, sid: str, kind: str) -> list[dict[str, Any]]:
    return [b for b in bundles(receiver, sid) if status_of(b)["type"] == kind]


def event_numbers(receiver: Receiver, sid: str) -> list[int]:
    return [
        int(e["event-number"])
        for b in of_type(receiver, sid, "event-notification")
        for e in status_of(b)["notification-event"]
    ]
