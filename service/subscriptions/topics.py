"""Recording for topic-based subscriptions, inside the writer's transaction (store write hook):

- `accepted`: a topic subscription was written. It gets its counter row; a re-create after a
  delete starts afresh (event count 0, old events and pending notifications dropped); and when
  it becomes active (created, or sent back as `requested`) a `handshake` notification.
- `record_events`: an alert request version that is a topic event (`topic_events.topic_event`)
  becomes, for every matching topic subscription, the next event number, a stored event (for
  `$events`) and an `event-notification` delivery, all in this transaction: committed with the
  alert change or rolled back with it, so numbers are gap-free and never skipped.
- `record_heartbeats`: the periodic check (workers/heartbeat.py) records a `heartbeat` for each
  active topic subscription whose last notification is older than its heartbeatPeriod.

Numbering: the counter row is incremented with one `UPDATE ... RETURNING`, which takes its row
lock until commit, so two writers on PostgreSQL serialise on it (SQLite has one writer anyway).
Subscriptions are visited in id order, so two writers never lock two counters crosswise.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from contract.topics import TOPIC_RESOURCE_TYPE
from service.fhir.index import IndexEntry
from service.subscriptions import deliveries
from service.subscriptions.collecting import collecting
from service.subscriptions.lifecycle import ended
from service.subscriptions.models import (
    CANCELLED,
    EVENT,
    HANDSHAKE,
    HEARTBEAT,
    PENDING,
    Delivery,
    SubscriptionEvent,
    TopicCounter,
)
from service.subscriptions.topic_events import topic_event

# Subscriptions that collect notifications: `error` ones too (held, sent once reactivated).


def _counter(session: Session, subscription_id: str) -> TopicCounter:
    row = session.get(TopicCounter, subscription_id, with_for_update=True)
    if row is None:
        row = TopicCounter(subscription_id=subscription_id, events=0, signals=0)
        session.add(row)
        session.flush()
    return row


def accepted(
    session: Session,
    *,
    subscription_id: str,
    body: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
    requested: bool,
    now: datetime,
) -> None:
    """`requested`: the client sent status `requested` (the server made it active)."""
    if previous is None:  # created, or re-created after a delete: a new subscription
        session.execute(
            update(Delivery)
            .where(Delivery.subscription_id == subscription_id, Delivery.status == PENDING)
            .values(status=CANCELLED, last_error="subscription re-created", claim=None)
        )
        session.execute(
            delete(SubscriptionEvent).where(SubscriptionEvent.subscription_id == subscription_id)
        )
        session.execute(delete(TopicCounter).where(TopicCounter.subscription_id == subscription_id))
    counter = _counter(session, subscription_id)
    activated = previous is None or previous.get("status") != "active" or requested
    if body.get("status") == "active" and activated:
        _signal(session, counter, HANDSHAKE, now)


def _signal(session: Session, counter: TopicCounter, kind: str, now: datetime) -> None:
    counter.signals += 1
    counter.last_notified_at = now
    deliveries.record(
        session,
        subscription_id=counter.subscription_id,
        resource_type="Subscription",
        resource_id=counter.subscription_id,
        version_id=counter.signals,
        now=now,
        kind=kind,
        event_number=counter.events,
    )


def _next_number(session: Session, subscription_id: str, now: datetime) -> int:
    number = session.execute(
        update(TopicCounter)
        .where(TopicCounter.subscription_id == subscription_id)
        .values(events=TopicCounter.events + 1, last_notified_at=now)
        .returning(TopicCounter.events)
    ).scalar_one_or_none()
    if number is None:  # written before its counter existed (cannot happen through accept)
        session.add(
            TopicCounter(subscription_id=subscription_id, events=1, signals=0, last_notified_at=now)
        )
        session.flush()
        return 1
    return int(number)


def record_events(
    session: Session,
    *,
    resource_type: str,
    resource_id: str,
    version_id: int,
    resource: Mapping[str, Any],
    index: IndexEntry,
    previous: bytes | None,
    now: datetime,
) -> int:
    """Events recorded for this version (one per matching topic subscription). `previous`:
    the version before, as stored (parsed only for the topics' resource type)."""
    if resource_type != TOPIC_RESOURCE_TYPE:
        return 0
    before = orjson.loads(previous) if previous is not None else None
    topic = topic_event(before, resource, resource_type)
    if topic is None:
        return 0
    recorded = 0
    for subscription in collecting(session):
        parsed, subscription_id = subscription.topic, subscription.id
        if parsed is None or parsed.topic != topic or ended(subscription.body, now):
            continue
        if not parsed.matches(resource_type, resource_id, index):
            continue
        number = _next_number(session, subscription_id, now)
        session.add(
            SubscriptionEvent(
                subscription_id=subscription_id,
                number=number,
                topic=topic,
                occurred_at=now,
                focus_type=resource_type,
                focus_id=resource_id,
                focus_version=version_id,
            )
        )
        deliveries.record(
            session,
            subscription_id=subscription_id,
            resource_type=resource_type,
            resource_id=resource_id,
            version_id=version_id,
            now=now,
            kind=EVENT,
            event_number=number,
        )
        recorded += 1
    return recorded


def record_heartbeats(session: Session, *, now: datetime) -> list[str]:
    """Record a heartbeat for each active topic subscription with a heartbeatPeriod whose last
    notification was recorded that long ago (or never), unless one is still pending. Returns
    the subscription ids."""
    out = []
    for subscription in collecting(session):
        parsed, subscription_id, body = subscription.topic, subscription.id, subscription.body
        if parsed is None or body.get("status") != "active" or parsed.heartbeat_seconds is None:
            continue
        if ended(body, now):
            continue
        counter = _counter(session, subscription_id)  # locked: one checker records it
        due = now - timedelta(seconds=parsed.heartbeat_seconds)
        if counter.last_notified_at is not None and counter.last_notified_at > due:
            continue
        waiting = session.scalar(
            select(Delivery.pk)
            .where(
                Delivery.subscription_id == subscription_id,
                Delivery.kind == HEARTBEAT,
                Delivery.status == PENDING,
            )
            .limit(1)
        )
        if waiting is not None:  # the receiver has not taken the last one yet
            continue
        _signal(session, counter, HEARTBEAT, now)
        out.append(subscription_id)
    return out
