"""The delivery log: recording notifications, handing them out, and reading the trail back.

Plain keyword-only functions over a session; the caller owns the transaction. A delivery is
handed out under a claim (a token plus a lease): only the task carrying the current token may
attempt it, and a claim that nobody used before its lease ran out (lost message, dead worker)
is handed out again. Rows stay `pending` until an attempt succeeds, is given up, or the
subscription goes away, so nothing is lost to a crash or a broker outage.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, and_, bindparam, or_, select, update
from sqlalchemy.orm import Session

from service.store import wakeups
from service.store.models import Resource
from service.subscriptions.models import (
    FAILED,
    HANDSHAKE,
    HEARTBEAT,
    PENDING,
    Delivery,
    DeliveryAttempt,
)

_DELIVERIES: Table = Delivery.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Claimed:
    pk: int
    claim: str
    subscription_id: str = ""  # for handing out a subscription's deliveries together


def record(
    session: Session,
    *,
    subscription_id: str,
    resource_type: str,
    resource_id: str,
    version_id: int,
    now: datetime,
    kind: str | None = None,
    event_number: int | None = None,
) -> None:
    """`kind` and `event_number`: topic subscriptions only (models.EVENT, HANDSHAKE,
    HEARTBEAT); a plain R4 notification has neither.

    A Core INSERT, run now, not an ORM object flushed later: this runs for every alert an
    evaluation writes, and nothing reads the new row back as an object before the commit (a
    duplicate raises IntegrityError here rather than at the flush)."""
    session.connection().execute(
        _DELIVERIES.insert(),
        {
            "uid": str(uuid.uuid4()),
            "subscription_id": subscription_id,
            "resource_type": resource_type,
            "resource_id": resource_id,
            "version_id": version_id,
            "created_at": now,
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "kind": kind,
            "event_number": event_number,
        },
    )
    wakeups.signal(session, wakeups.DELIVERIES)  # the delivery relay looks once this commits


def claim_due(session: Session, *, now: datetime, lease: float, limit: int = 100) -> list[Claimed]:
    """Claim pending deliveries that are due and not handed out, oldest first.

    Deliveries of a subscription in `error` are held (kept pending, not tried) until the client
    sets it active again; those of a deleted or `off` one are handed out so the task can
    cancel them.
    """
    d = _DELIVERIES.c
    subscription = and_(Resource.type == "Subscription", Resource.id == d.subscription_id)
    stmt = (
        select(d.pk, d.subscription_id)
        .join(Resource, subscription)
        .where(
            d.status == PENDING,
            d.next_attempt_at <= now,
            or_(d.locked_until.is_(None), d.locked_until < now),
            or_(Resource.deleted.is_(True), Resource.status != "error"),
        )
        .order_by(d.next_attempt_at, d.pk)
        .limit(limit)
        .with_for_update(of=_DELIVERIES, skip_locked=True)
    )
    conn = session.connection()
    out = [Claimed(pk, str(uuid.uuid4()), sid) for pk, sid in conn.execute(stmt)]
    if out:  # Core, one executemany: this runs on every wake-up of every relay
        conn.execute(
            update(_DELIVERIES)
            .where(d.pk == bindparam("b_pk"))
            .values(claim=bindparam("b_claim"), locked_until=now + timedelta(seconds=lease)),
            [{"b_pk": c.pk, "b_claim": c.claim} for c in out],
        )
    return out


def release(session: Session, claimed: Sequence[Claimed]) -> None:
    """The hand-off failed: make the deliveries available again right away (each only while
    its claim is still the one handed out)."""
    if not claimed:
        return
    d = _DELIVERIES.c
    session.connection().execute(
        update(_DELIVERIES)
        .where(d.pk == bindparam("b_pk"), d.claim == bindparam("b_claim"))
        .values(claim=None, locked_until=None),
        [{"b_pk": c.pk, "b_claim": c.claim} for c in claimed],
    )


def requeue_failed(session: Session, subscription_id: str, *, now: datetime) -> int:
    """A subscription back from `error`: its given-up deliveries get a fresh set of attempts."""
    result = session.execute(
        update(Delivery)
        .where(Delivery.subscription_id == subscription_id, Delivery.status == FAILED)
        .values(status=PENDING, attempts=0, next_attempt_at=now, claim=None, locked_until=None)
    )
    wakeups.signal(session, wakeups.DELIVERIES)  # due now: the relay looks once this commits
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True, slots=True)
class AttemptView:
    number: int
    started_at: datetime
    duration_ms: int
    outcome: str
    http_status: int | None
    error: str | None


@dataclass(frozen=True, slots=True)
class DeliveryView:
    uid: str
    subscription_id: str
    resource: str  # "Type/id/_history/n"
    created_at: datetime
    status: str
    attempts: int
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_error: str | None
    tries: tuple[AttemptView, ...]
    kind: str | None = None  # topic subscriptions: event | handshake | heartbeat
    event_number: int | None = None


def _resource(row: Delivery) -> str:
    if row.kind in (HANDSHAKE, HEARTBEAT):  # about the subscription itself
        return f"Subscription/{row.subscription_id}"
    return f"{row.resource_type}/{row.resource_id}/_history/{row.version_id}"


def log(session: Session, subscription_id: str) -> list[DeliveryView]:
    """The delivery log of one subscription, oldest first, each with its attempts."""
    rows = session.scalars(
        select(Delivery).where(Delivery.subscription_id == subscription_id).order_by(Delivery.pk)
    ).all()
    tries: dict[int, list[AttemptView]] = {r.pk: [] for r in rows}
    if rows:
        attempts = session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_pk.in_(list(tries)))
            .order_by(DeliveryAttempt.delivery_pk, DeliveryAttempt.number)
        )
        for a in attempts:
            tries[a.delivery_pk].append(
                AttemptView(
                    a.number, a.started_at, a.duration_ms, a.outcome, a.http_status, a.error
                )
            )
    return [
        DeliveryView(
            r.uid,
            r.subscription_id,
            _resource(r),
            r.created_at,
            r.status,
            r.attempts,
            r.next_attempt_at,
            r.delivered_at,
            r.last_error,
            tuple(tries[r.pk]),
            r.kind,
            r.event_number,
        )
        for r in rows
    ]
