"""The subscription topics of the alert contract (HL7 FHIR Subscriptions R5 Backport IG, R4).

A topic-based Subscription names one of these canonicals in `Subscription.criteria`; the
CapabilityStatement advertises them, and every notification's SubscriptionStatus carries the
topic. Spelled once here (standard library only) so the service, its tests and the README
agree on every URL and code.

All four topics are about the alert request (CommunicationRequest) and take the same filters:
`patient` and `priority`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

from contract import SERVICE_BASE_URL

TOPIC_BASE_URL: Final = f"{SERVICE_BASE_URL}/SubscriptionTopic"

TopicCode = Literal["alert-opened", "alert-escalated", "alert-priority-changed", "alert-closed"]

ALERT_OPENED: Final[TopicCode] = "alert-opened"
ALERT_ESCALATED: Final[TopicCode] = "alert-escalated"
ALERT_PRIORITY_CHANGED: Final[TopicCode] = "alert-priority-changed"
ALERT_CLOSED: Final[TopicCode] = "alert-closed"

# What each topic means, as the CapabilityStatement and README say it.
TOPIC_DESCRIPTIONS: Final[Mapping[TopicCode, str]] = {
    ALERT_OPENED: "A new alert request to the oncology team is open",
    ALERT_ESCALATED: "An alert missed its acknowledgement deadline and was escalated",
    ALERT_PRIORITY_CHANGED: (
        "An alert's priority changed: an open request's priority was changed, or the service "
        "re-issued the alert in a request that replaces the earlier one(s)"
    ),
    ALERT_CLOSED: "An alert request was acknowledged, dismissed or otherwise closed",
}

TOPIC_CODES: Final[tuple[TopicCode, ...]] = tuple(TOPIC_DESCRIPTIONS)

# The resource type every topic is about, and the filters a subscriber may set on it.
TOPIC_RESOURCE_TYPE: Final = "CommunicationRequest"
TOPIC_FILTER_PARAMETERS: Final = frozenset({"patient", "priority"})


def topic_url(code: TopicCode) -> str:
    """The canonical URL of a topic."""
    return f"{TOPIC_BASE_URL}/{code}"


TOPIC_URLS: Final[Mapping[str, TopicCode]] = {topic_url(code): code for code in TOPIC_CODES}


def topic_of(url: str) -> TopicCode | None:
    """The topic a canonical names (a `|version` suffix is ignored), or None."""
    return TOPIC_URLS.get(url.split("|", 1)[0])
