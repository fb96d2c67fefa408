"""Tables of push delivery (Saleor's pattern): a delivery row per (subscription, resource
version), written in the transaction that stored the version and before any attempt, plus one
attempt row per try. Together they are the audit trail and the deduplication.

The Subscription itself is a FHIR resource in `resources`; only its signing secret lives here,
because it is write-only (never served back by read, search or history).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from service.store.models import Base

_ID = String(64)
_PK = BigInteger().with_variant(Integer, "sqlite")

# Delivery.status values.
PENDING = "pending"  # to be attempted (now, or at next_attempt_at)
SUCCESS = "success"  # the receiver answered 2xx
FAILED = "failed"  # gave up after max attempts; the subscription went to `error`
CANCELLED = "cancelled"  # the subscription was turned off or deleted before delivery

# Delivery.kind values (migration 0007). None: a plain R4 notification of one resource version.
EVENT = "event"  # a topic event (event-notification), numbered per subscription
HANDSHAKE = "handshake"  # a topic subscription became active
HEARTBEAT = "heartbeat"  # a topic subscription had nothing to say for heartbeatPeriod
TOPIC_KINDS = (EVENT, HANDSHAKE, HEARTBEAT)


class SubscriptionSecret(Base):
    """The HMAC key of a subscription, supplied by the client and never served back."""

    __tablename__ = "subscription_secrets"
    subscription_id: Mapped[str] = mapped_column(_ID, primary_key=True)
    secret: Mapped[str] = mapped_column(String(512), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)


class SubscriptionOwner(Base):
    """Who last created or changed a subscription, with the scopes they held then (migration
    0003). Delivery re-checks them: an owner without read scope on the criteria's type gets
    nothing, whatever token later turns up."""

    __tablename__ = "subscription_owners"
    subscription_id: Mapped[str] = mapped_column(_ID, primary_key=True)
    subject: Mapped[str] = mapped_column(String(255), nullable=False)
    scopes: Mapped[str] = mapped_column(Text, nullable=False)  # space-separated, as in a token
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)


class Delivery(Base):
    """One notification: this subscription must hear about this resource version (plain R4, and
    topic events: the focus version), or, for a topic subscription's handshake and heartbeat,
    about itself (`Subscription/<id>`, `version_id` then a per-subscription serial)."""

    __tablename__ = "notification_deliveries"
    pk: Mapped[int] = mapped_column(_PK, primary_key=True, autoincrement=True)
    # Public id of the notification (Bundle.id, X-FHIR-Alerts-Delivery): the same on every
    # retry, so a receiver can drop a duplicate of a delivery it already has.
    uid: Mapped[str] = mapped_column(String(36), nullable=False, unique=True)
    subscription_id: Mapped[str] = mapped_column(_ID, nullable=False)
    resource_type: Mapped[str] = mapped_column(String(64), nullable=False)
    resource_id: Mapped[str] = mapped_column(_ID, nullable=False)
    version_id: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    # Attempts made since the delivery was (re)queued; it is given up at max attempts.
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    # Hand-off lease: while in the future, the delivery is queued or being attempted.
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)
    # Token of the current hand-off; the task that carries it is the only one that may try.
    claim: Mapped[str | None] = mapped_column(String(36))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(String(255))
    # Topic subscriptions (migration 0007): EVENT, HANDSHAKE or HEARTBEAT; None for plain R4.
    kind: Mapped[str | None] = mapped_column(String(16))
    # EVENT: the event's number. HANDSHAKE / HEARTBEAT: the subscription's event count when it
    # was recorded (its eventsSinceSubscriptionStart), so every retry sends the same body.
    event_number: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        UniqueConstraint(
            "subscription_id",
            "resource_type",
            "resource_id",
            "version_id",
            name="uq_delivery_subscription_version",
        ),
        Index("ix_delivery_due", "status", "next_attempt_at"),
        Index("ix_delivery_subscription", "subscription_id", "status"),
    )


class DeliveryAttempt(Base):
    """One try: when, how long, and what came back (status code or error class, no body)."""

    __tablename__ = "notification_attempts"
    pk: Mapped[int] = mapped_column(_PK, primary_key=True, autoincrement=True)
    delivery_pk: Mapped[int] = mapped_column(
        _PK, ForeignKey("notification_deliveries.pk", ondelete="CASCADE"), nullable=False
    )
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    started_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    duration_ms: Mapped[int] = mapped_column(Integer, nullable=False)
    outcome: Mapped[str] = mapped_column(String(16), nullable=False)  # success | failed
    http_status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (Index("ix_attempt_delivery", "delivery_pk", "number"),)


class TopicCounter(Base):
    """One row per topic subscription: how many events it has had (the last event number) and
    when it last had a notification recorded (for heartbeats). The event counter is incremented
    in the transaction that records the event, under this row's lock, so numbers are gap-free
    and never shared: a rolled-back write takes its number back with it."""

    __tablename__ = "subscription_topic_counters"
    subscription_id: Mapped[str] = mapped_column(_ID, primary_key=True)
    events: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    # Serial of handshake and heartbeat deliveries (their Delivery.version_id).
    signals: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_notified_at: Mapped[datetime | None] = mapped_column(DateTime)


class SubscriptionEvent(Base):
    """One topic event of one subscription, kept so `$events` can replay any range of them."""

    __tablename__ = "subscription_events"
    pk: Mapped[int] = mapped_column(_PK, primary_key=True, autoincrement=True)
    subscription_id: Mapped[str] = mapped_column(_ID, nullable=False)
    number: Mapped[int] = mapped_column(BigInteger, nullable=False)
    topic: Mapped[str] = mapped_column(String(64), nullable=False)  # contract.topics code
    occurred_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    focus_type: Mapped[str] = mapped_column(String(64), nullable=False)
    focus_id: Mapped[str] = mapped_column(_ID, nullable=False)
    focus_version: Mapped[int] = mapped_column(Integer, nullable=False)

    __table_args__ = (
        UniqueConstraint("subscription_id", "number", name="uq_subscription_event_number"),
    )
