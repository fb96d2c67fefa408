"""The Subscriptions that collect notifications, read and parsed once per transaction.

Every Flag or CommunicationRequest version is matched against them twice (plain criteria in
`hook.record`, topics in `topics.record_events`), and a batched evaluation writes dozens of
alert versions in one transaction: reading and parsing every Subscription for each was a
quarter of the worker's time at 100 alerting patients a second. The store keeps the parsed
list in the transaction's session and drops it whenever a Subscription is written or deleted
in that transaction (`resources.type_cache`), so a change is seen by the next alert write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.store.models import Resource
from service.store.resources import type_cache
from service.subscriptions.criteria import Criteria, CriteriaError, parse_criteria
from service.subscriptions.topic_subscription import TopicSubscription, topic_subscription

# Subscriptions that collect notifications: `error` ones too (held, sent once reactivated).
COLLECTING = ("active", "error")


@dataclass(frozen=True, slots=True)
class Collecting:
    id: str
    body: dict[str, Any]
    criteria: Criteria | None  # a plain R4 subscription's search criteria
    topic: TopicSubscription | None  # a topic-based subscription's topic and filters


def collecting(session: Session) -> list[Collecting]:
    """In id order (topic event numbers lock counters in that order)."""
    return type_cache(session, "Subscription", lambda: _read(session))


def _read(session: Session) -> list[Collecting]:
    rows = session.execute(
        select(Resource.id, Resource.content)
        .where(
            Resource.type == "Subscription",
            Resource.deleted.is_(False),
            Resource.status.in_(COLLECTING),
        )
        .order_by(Resource.id)
    )
    out: list[Collecting] = []
    for subscription_id, content in rows:
        body = orjson.loads(content)
        topic = topic_subscription(body)
        criteria = None
        if topic is None:
            try:
                criteria = parse_criteria(body.get("criteria", ""))
            except CriteriaError:  # validated on write; one that no longer parses is inert
                continue
        out.append(Collecting(subscription_id, body, criteria, topic))
    return out
