"""A topic-based Subscription (Subscriptions R5 Backport IG, R4 shapes), read from its JSON.

What makes one: `Subscription.criteria` is a topic canonical (`contract.topics`) instead of a
search. Around it, per the IG's `backport-subscription` profile:

- `_criteria.extension[]` `backport-filter-criteria` (`valueString`), each a search on the
  topic's resource, `CommunicationRequest?patient=Patient/123&priority=stat,asap`; only
  `patient` and `priority` are offered; values of one parameter are OR-ed, parameters and
  several extensions AND-ed (judged exactly as plain criteria are, on the version's index);
- `channel.extension[]` `backport-heartbeat-period` (`valueUnsignedInt` seconds; absent = no
  heartbeats), `backport-timeout` (`valueUnsignedInt` seconds, caps one attempt), and
  `backport-max-count` (`valuePositiveInt`; accepted: every notification carries one event);
- `channel._payload.extension[]` `backport-payload-content`, read by `channel.parse_channel`.

Anything else (an unknown canonical, another filter, a modifier) is refused with a 422.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contract.topics import (
    TOPIC_FILTER_PARAMETERS,
    TOPIC_RESOURCE_TYPE,
    TopicCode,
    topic_of,
    topic_url,
)
from service.errors import Issue
from service.fhir.index import IndexEntry
from service.subscriptions.criteria import Criteria, CriteriaError, parse_criteria

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
PROFILE_URL = f"{BACKPORT}/backport-subscription"
FILTER_CRITERIA_URL = f"{BACKPORT}/backport-filter-criteria"
HEARTBEAT_PERIOD_URL = f"{BACKPORT}/backport-heartbeat-period"
TIMEOUT_URL = f"{BACKPORT}/backport-timeout"
MAX_COUNT_URL = f"{BACKPORT}/backport-max-count"
STATUS_PROFILE_URL = f"{BACKPORT}/backport-subscription-status-r4"
NOTIFICATION_PROFILE_URL = f"{BACKPORT}/backport-subscription-notification-r4"
TOPIC_CANONICAL_URL = f"{BACKPORT}/capabilitystatement-subscriptiontopic-canonical"


@dataclass(frozen=True, slots=True)
class TopicSubscription:
    topic: TopicCode
    filters: tuple[Criteria, ...]
    heartbeat_seconds: int | None
    timeout_seconds: int | None

    @property
    def url(self) -> str:
        return topic_url(self.topic)

    def matches(self, resource_type: str, resource_id: str, index: IndexEntry) -> bool:
        return resource_type == TOPIC_RESOURCE_TYPE and all(
            f.matches(resource_type, resource_id, index) for f in self.filters
        )


def is_topic_based(subscription: Mapping[str, Any]) -> bool:
    """A canonical URL in criteria (a search starts with a resource type, never a scheme)."""
    criteria = subscription.get("criteria")
    return isinstance(criteria, str) and "://" in criteria


def _extensions(element: Any, url: str) -> list[Mapping[str, Any]]:
    if not isinstance(element, Mapping):
        return []
    return [
        e for e in element.get("extension") or () if isinstance(e, Mapping) and e.get("url") == url
    ]


def _issue(code: str, path: str, message: str) -> Issue:
    return Issue("error", code, f"{path}: {message}", (path,))


def _filter(text: Any, issues: list[Issue]) -> Criteria | None:
    path = "Subscription.criteria.extension"
    if not isinstance(text, str) or not text.strip():
        issues.append(_issue("required", path, "backport-filter-criteria needs a valueString"))
        return None
    rtype, sep, query = text.strip().partition("?")
    if not sep:  # a bare query string: the topic's resource is meant
        rtype, query = TOPIC_RESOURCE_TYPE, text.strip()
    if rtype != TOPIC_RESOURCE_TYPE:
        issues.append(_issue("not-supported", path, f"filters apply to {TOPIC_RESOURCE_TYPE}"))
        return None
    names = {part.partition("=")[0] for part in query.split("&") if part}
    if not names or any(n not in TOPIC_FILTER_PARAMETERS for n in names):
        issues.append(
            _issue(
                "not-supported",
                path,
                "filters may only use " + " and ".join(sorted(TOPIC_FILTER_PARAMETERS)),
            )
        )
        return None
    try:
        return parse_criteria(f"{rtype}?{query}")
    except CriteriaError as exc:
        issues.append(_issue("value", path, str(exc)))
        return None


def _seconds(channel: Mapping[str, Any], url: str, value: str, issues: list[Issue]) -> int | None:
    found = _extensions(channel, url)
    if not found:
        return None
    name = url.rsplit("/", 1)[1]
    if len(found) > 1:
        issues.append(_issue("invalid", "Subscription.channel.extension", f"at most one {name}"))
        return None
    seconds = found[0].get(value)
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 1:
        issues.append(
            _issue(
                "value", "Subscription.channel.extension", f"{name} needs a {value} of 1 or more"
            )
        )
        return None
    return seconds


def parse_topic_subscription(
    subscription: Mapping[str, Any],
) -> tuple[TopicSubscription | None, list[Issue]]:
    """The topic subscription, or None with the issues that make it unusable."""
    issues: list[Issue] = []
    criteria = subscription.get("criteria")
    topic = topic_of(criteria) if isinstance(criteria, str) else None
    if topic is None:
        issues.append(
            _issue("not-supported", "Subscription.criteria", "unknown subscription topic")
        )
    filters = []
    for ext in _extensions(subscription.get("_criteria"), FILTER_CRITERIA_URL):
        parsed = _filter(ext.get("valueString"), issues)
        if parsed is not None:
            filters.append(parsed)
    channel = subscription.get("channel")
    channel = channel if isinstance(channel, Mapping) else {}
    heartbeat = _seconds(channel, HEARTBEAT_PERIOD_URL, "valueUnsignedInt", issues)
    timeout = _seconds(channel, TIMEOUT_URL, "valueUnsignedInt", issues)
    _seconds(channel, MAX_COUNT_URL, "valuePositiveInt", issues)
    if issues or topic is None:
        return None, issues
    return TopicSubscription(topic, tuple(filters), heartbeat, timeout), []


def topic_subscription(subscription: Mapping[str, Any]) -> TopicSubscription | None:
    """The stored subscription's topic settings; None for a plain (or unusable) one."""
    if not is_topic_based(subscription):
        return None
    parsed, _issues = parse_topic_subscription(subscription)
    return parsed
