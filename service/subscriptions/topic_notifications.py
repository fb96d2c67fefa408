"""Topic notifications read back from the store: the body of one delivery (built at attempt
time, `workers/delivery/attempt.py`), and the stored events and counts `$status` and `$events`
answer with. Shapes come from `topic_payload`; this module only reads rows.

A delivery's body depends only on its row (uid, kind, event number, creation time), the event
it names and the subscription's content level and status, so every retry of a notification
sends the same bytes while the subscription stays active.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.store.models import ResourceVersion
from service.store.resources import fhir_instant
from service.subscriptions.channel import Content
from service.subscriptions.models import EVENT, SubscriptionEvent, TopicCounter
from service.subscriptions.payload import Change
from service.subscriptions.topic_payload import Event, notification_bundle
from service.subscriptions.topic_subscription import TopicSubscription

# `$events` answers at most this many events per call; ask again from the next number.
MAX_EVENTS = 500
_KIND_TO_TYPE = {EVENT: "event-notification"}


class DeliveryFacts(Protocol):
    """The columns of a delivery row a body is built from (an ORM `Delivery` or the row the
    attempt read with its other facts in one statement)."""

    @property
    def uid(self) -> str: ...
    @property
    def subscription_id(self) -> str: ...
    @property
    def kind(self) -> str | None: ...
    @property
    def event_number(self) -> int | None: ...
    @property
    def created_at(self) -> datetime: ...


def events_since_start(session: Session, subscription_id: str) -> int:
    counter = session.get(TopicCounter, subscription_id)
    return counter.events if counter is not None else 0


def _event(session: Session, row: SubscriptionEvent) -> Event | None:
    version = session.get(ResourceVersion, (row.focus_type, row.focus_id, row.focus_version))
    if version is None or version.deleted or version.content is None:
        return None
    change = Change(
        resource_type=row.focus_type,
        resource_id=row.focus_id,
        version_id=row.focus_version,
        last_updated=fhir_instant(version.last_updated),
        created=version.method == "POST",
        content=version.content,
    )
    return Event(row.number, fhir_instant(row.occurred_at), change)


def stored_events(
    session: Session, subscription_id: str, *, since: int, until: int | None
) -> list[Event]:
    """Events numbered since..until (inclusive), oldest first, at most MAX_EVENTS. An event
    whose focus version is gone (the alert was deleted) is left out."""
    stmt = select(SubscriptionEvent).where(
        SubscriptionEvent.subscription_id == subscription_id, SubscriptionEvent.number >= since
    )
    if until is not None:
        stmt = stmt.where(SubscriptionEvent.number <= until)
    rows = session.scalars(stmt.order_by(SubscriptionEvent.number).limit(MAX_EVENTS))
    return [e for e in (_event(session, r) for r in rows) if e is not None]


def delivery_body(
    session: Session,
    row: DeliveryFacts,
    *,
    subscription: Mapping[str, Any],
    parsed: TopicSubscription,
    content: Content,
    fhir_base: str | None,
) -> bytes | None:
    """The notification Bundle of a topic delivery; None when its event is gone."""
    events: list[Event] = []
    if row.kind == EVENT:
        stored = session.scalar(
            select(SubscriptionEvent).where(
                SubscriptionEvent.subscription_id == row.subscription_id,
                SubscriptionEvent.number == row.event_number,
            )
        )
        event = _event(session, stored) if stored is not None else None
        if event is None:
            return None
        events.append(event)
    bundle: dict[str, Any] = notification_bundle(
        bundle_id=row.uid,
        timestamp=events[0].timestamp if events else fhir_instant(row.created_at),
        subscription_id=row.subscription_id,
        topic_url=parsed.url,
        status=str(subscription.get("status")),
        kind=_KIND_TO_TYPE.get(row.kind or "", row.kind or ""),
        events_since_start=row.event_number or 0,
        events=events,
        content=content,
        fhir_base=fhir_base,
    )
    return orjson.dumps(bundle)
