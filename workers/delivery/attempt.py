"""One delivery attempt: check the claim, build the request (signed when the subscription has a
secret), POST it, record the outcome. The body is built here, at attempt time: a plain R4
notification from the version it names (`payload.notification_body`), a topic subscription's
handshake, heartbeat or event-notification from its stored event (`topic_notifications`).

Three steps, and the HTTP call is outside any transaction (a slow receiver must not hold the
database): (1) under the delivery's row lock, consume the claim and mark the attempt in flight,
so a duplicate of this task (broker redelivery, relay re-dispatch) finds nothing to do;
(2) POST; (3) record an attempt row and either succeed, schedule the next try with exponential
back-off, or give up and put the subscription in `error`. A crash between (1) and (3) leaves
the delivery pending; it is handed out again when the in-flight lease runs out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Table, and_, bindparam, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from service.store import resources as store
from service.store import wakeups
from service.store.db import transaction
from service.store.models import Resource, ResourceVersion
from service.subscriptions import access, topic_notifications
from service.subscriptions.channel import parse_channel
from service.subscriptions.endpoint_policy import AllowList
from service.subscriptions.lifecycle import put_in_error
from service.subscriptions.models import (
    CANCELLED,
    FAILED,
    PENDING,
    SUCCESS,
    TOPIC_KINDS,
    Delivery,
    DeliveryAttempt,
    SubscriptionOwner,
    SubscriptionSecret,
)
from service.subscriptions.payload import Change, notification_body
from service.subscriptions.settings import DeliverySettings, allow_list
from service.subscriptions.signing import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    SUBSCRIPTION_HEADER,
    sign,
)
from service.subscriptions.topic_subscription import topic_subscription
from workers.delivery.http import Resolver, Result, post, system_resolve

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class Request:
    delivery_pk: int
    subscription_id: str
    number: int
    started_at: datetime
    endpoint: str
    body: bytes
    headers: dict[str, str]
    unusable: str | None = None  # why nothing can be sent (counts as a failed attempt)
    timeout: float | None = None  # the subscription's own cap (backport-timeout), if any


_DELIVERIES: Table = Delivery.__table__  # type: ignore[assignment]
_ATTEMPTS: Table = DeliveryAttempt.__table__  # type: ignore[assignment]
_VERSIONS: Table = ResourceVersion.__table__  # type: ignore[assignment]
_OWNERS: Table = SubscriptionOwner.__table__  # type: ignore[assignment]
_SECRETS: Table = SubscriptionSecret.__table__  # type: ignore[assignment]
_SUBSCRIPTIONS = Resource.__table__.alias("subscription")

# Everything an attempt needs, in one statement under the delivery's row lock: the delivery, its
# subscription (current version), recorded owner and secret, the last attempt's number, and
# for a plain notification the resource version it names. Why one: five ORM lookups per
# attempt were most of a delivering worker's time (py-spy, 100 new alerts/s, issue 12).
_D = _DELIVERIES.c
_DUE = (
    select(
        _D.pk,
        _D.uid,
        _D.subscription_id,
        _D.resource_type,
        _D.resource_id,
        _D.version_id,
        _D.created_at,
        _D.status,
        _D.claim,
        _D.kind,
        _D.event_number,
        _SUBSCRIPTIONS.c.deleted.label("subscription_deleted"),
        _SUBSCRIPTIONS.c.content.label("subscription"),
        _OWNERS.c.subject.label("owner_subject"),
        _OWNERS.c.scopes.label("owner_scopes"),
        _SECRETS.c.secret,
        select(func.max(_ATTEMPTS.c.number))
        .where(_ATTEMPTS.c.delivery_pk == _D.pk)
        .scalar_subquery()
        .label("last_number"),
        _VERSIONS.c.deleted.label("version_deleted"),
        _VERSIONS.c.content.label("version_content"),
        _VERSIONS.c.last_updated.label("version_last_updated"),
        _VERSIONS.c.method.label("version_method"),
    )
    .select_from(
        _DELIVERIES.outerjoin(
            _SUBSCRIPTIONS,
            and_(
                _SUBSCRIPTIONS.c.type == "Subscription",
                _SUBSCRIPTIONS.c.id == _D.subscription_id,
            ),
        )
        .outerjoin(_OWNERS, _OWNERS.c.subscription_id == _D.subscription_id)
        .outerjoin(_SECRETS, _SECRETS.c.subscription_id == _D.subscription_id)
        .outerjoin(
            _VERSIONS,
            and_(
                _D.kind.is_(None),  # topic rows name their event, not a version to send
                _VERSIONS.c.type == _D.resource_type,
                _VERSIONS.c.id == _D.resource_id,
                _VERSIONS.c.version_id == _D.version_id,
            ),
        )
    )
    .where(_D.pk.in_(bindparam("pks", expanding=True)))
    .order_by(_D.pk)  # rows locked in one order by every attempt, so none deadlock
    .with_for_update(of=_DELIVERIES)
)


def _update(session: Session, delivery_pk: int, **values: Any) -> None:
    session.connection().execute(update(_DELIVERIES).where(_D.pk == delivery_pk).values(**values))


def _settle(session: Session, delivery_pk: int, status: str, reason: str) -> str:
    _update(
        session, delivery_pk, status=status, last_error=reason[:255], claim=None, locked_until=None
    )
    return status


def _prepare_many(
    session: Session,
    items: Sequence[tuple[int, str]],
    settings: DeliverySettings,
    now: datetime,
) -> list[Request | str]:
    """Per item, the request to send, or an outcome word when there is nothing to attempt;
    one statement reads every delivery with its facts, one marks the sendable ones in flight.
    The lease covers the whole batch, whose requests go out one after the other."""
    found = {
        row.pk: row
        for row in session.connection().execute(_DUE, {"pks": sorted({pk for pk, _ in items})})
    }
    in_flight: list[int] = []
    out: list[Request | str] = []
    for pk, claim in items:
        row = found.pop(pk, None)  # a pk listed twice is judged once; the repeat is skipped
        out.append(_judge(session, row, claim, settings, now, in_flight))
    if in_flight:  # the claims are used up, and the lease covers the attempts
        lease = settings.in_flight_seconds + (len(in_flight) - 1) * settings.timeout_seconds
        session.connection().execute(
            update(_DELIVERIES)
            .where(_D.pk.in_(in_flight))
            .values(claim=None, locked_until=now + timedelta(seconds=lease))
        )
    return out


def _judge(
    session: Session,
    row: Any,
    claim: str,
    settings: DeliverySettings,
    now: datetime,
    in_flight: list[int],
) -> Request | str:
    """One delivery read by `_prepare_many`: settle it, hold it, or build its request (and
    add it to `in_flight`)."""
    if row is None or row.status != PENDING or row.claim != claim:
        return "skipped"  # a duplicate hand-off, or already settled
    pk = row.pk
    if row.subscription is None or row.subscription_deleted:
        return _settle(session, pk, CANCELLED, "subscription deleted")
    resource = orjson.loads(row.subscription)
    status = resource.get("status")
    if status == "off":
        return _settle(session, pk, CANCELLED, "subscription is off")
    if status != "active":  # in error: held until the client reactivates it
        _update(session, pk, claim=None, locked_until=None)
        return "held"
    refused = access.owner_refusal(
        access.recorded_owner(row.owner_subject, row.owner_scopes), resource
    )
    if refused is not None:  # issue 10: the owner may not read what would be sent
        _settle(session, pk, FAILED, refused)
        put_in_error(session, row.subscription_id, f"not delivered: {refused}", now=now)
        log.warning("delivery %s to Subscription/%s refused: %s", pk, row.subscription_id, refused)
        return "refused"
    number = (row.last_number or 0) + 1

    channel, _issues = parse_channel(resource)
    if channel is None:  # validated on write; only a damaged row gets here
        reason = "subscription channel unusable"
        in_flight.append(pk)
        return Request(pk, row.subscription_id, number, now, "", b"", {}, reason)
    timeout: float | None = None
    mime = channel.mime
    if row.kind in TOPIC_KINDS:  # handshake, heartbeat, event-notification (Backport IG)
        parsed = topic_subscription(resource)
        built = (
            None
            if parsed is None
            else topic_notifications.delivery_body(
                session,
                row,
                subscription=resource,
                parsed=parsed,
                content=channel.content,
                fhir_base=settings.fhir_base,
            )
        )
        if parsed is None or built is None:
            return _settle(session, pk, CANCELLED, "topic event not found")
        body = built
        mime = mime or "application/fhir+json"  # topic notifications always have a Bundle
        timeout = parsed.timeout_seconds
    else:
        if row.version_content is None or row.version_deleted:
            return _settle(session, pk, CANCELLED, "resource version not found")
        change = Change(
            resource_type=row.resource_type,
            resource_id=row.resource_id,
            version_id=row.version_id,
            last_updated=store.fhir_instant(row.version_last_updated),
            created=row.version_method == "POST",
            content=row.version_content,
        )
        body = notification_body(
            channel.content,
            uid=row.uid,
            timestamp=store.fhir_instant(row.created_at),
            change=change,
            fhir_base=settings.fhir_base,
        )
    headers = dict(channel.headers)
    if mime is not None:
        headers["Content-Type"] = mime
    if row.secret is not None:  # without one (plain R4) the receiver trusts its channel.header
        headers[SIGNATURE_HEADER] = sign(row.secret, body)
    headers[DELIVERY_HEADER] = row.uid
    headers[SUBSCRIPTION_HEADER] = f"Subscription/{row.subscription_id}"
    in_flight.append(pk)
    return Request(
        pk, row.subscription_id, number, now, channel.endpoint, body, headers, timeout=timeout
    )


_SETTLE = (
    update(_DELIVERIES)
    .where(_D.pk == bindparam("b_pk"))
    .values(
        status=bindparam("b_status"),
        attempts=bindparam("b_attempts"),
        claim=None,
        locked_until=None,
        delivered_at=bindparam("b_delivered_at"),
        last_error=bindparam("b_last_error"),
        next_attempt_at=bindparam("b_next_attempt_at"),
    )
)


def _record_many(
    session: Session,
    sent: Sequence[tuple[Request, Result]],
    settings: DeliverySettings,
    now: datetime,
) -> list[str]:
    """Record each attempt and its consequence: success, the next try with exponential
    back-off, or giving up (the subscription goes to `error`). Three statements for the whole
    batch, plus one Subscription write per subscription given up on."""
    conn = session.connection()
    pks = sorted({request.delivery_pk for request, _ in sent})
    current = {
        row.pk: row
        for row in conn.execute(
            select(_D.pk, _D.status, _D.attempts, _D.delivered_at, _D.next_attempt_at)
            .where(_D.pk.in_(pks))
            .order_by(_D.pk)
            .with_for_update()
        )
    }
    conn.execute(
        insert(_ATTEMPTS),
        [
            {
                "delivery_pk": request.delivery_pk,
                "number": request.number,
                "started_at": request.started_at,
                "duration_ms": result.duration_ms,
                "outcome": SUCCESS if result.ok else FAILED,
                "http_status": result.http_status,
                "error": result.error[:255] if result.error else None,
            }
            for request, result in sent
        ],
    )
    outcomes: list[str] = []
    rows: list[dict[str, Any]] = []
    given_up: list[tuple[Request, int, str]] = []
    for request, result in sent:
        row = current[request.delivery_pk]  # deliveries are never deleted while in flight
        attempts = row.attempts + 1
        values = {
            "b_pk": row.pk,
            "b_status": row.status,
            "b_attempts": attempts,
            "b_delivered_at": row.delivered_at,
            "b_last_error": None,
            "b_next_attempt_at": row.next_attempt_at,
        }
        rows.append(values)
        if result.ok:
            values.update(b_status=SUCCESS, b_delivered_at=now)
            outcomes.append(SUCCESS)
            continue
        values["b_last_error"] = last_error = (result.error or "failed")[:255]
        if row.status != PENDING:  # cancelled while we were sending: keep that
            outcomes.append(str(row.status))
        elif attempts >= settings.max_attempts:
            values["b_status"] = FAILED
            given_up.append((request, attempts, last_error))
            outcomes.append(FAILED)
        else:
            # Counted from the attempt's start, not its end: the log shows both, and their
            # distance must not tell a refused port from a silent one (the delivery log is no
            # port scanner).
            delay = timedelta(seconds=settings.retry_delay(attempts))
            values["b_next_attempt_at"] = request.started_at + delay
            outcomes.append("retry")
    conn.execute(_SETTLE, rows)
    for request, attempts, last_error in given_up:
        reason = (
            f"{attempts} delivery attempts failed (last: {last_error}); "
            "notifications are held until the status is set to requested again"
        )
        put_in_error(session, request.subscription_id, reason, now=now)
        log.warning(
            "delivery %s to Subscription/%s given up after %s attempts; subscription in error",
            request.delivery_pk,
            request.subscription_id,
            attempts,
        )
    if "retry" in outcomes:
        # The delivery relay (another process in production) learns the retry's time at once
        # and sleeps until then, rather than finding it at its next poll.
        wakeups.signal(session, wakeups.DELIVERIES)
    return outcomes


def attempt(
    factory: sessionmaker[Session],
    delivery_id: int,
    claim: str,
    *,
    settings: DeliverySettings,
    clock: Clock = store.utcnow,
    allow: AllowList | None = None,
    resolve: Resolver = system_resolve,
) -> str:
    """Make one attempt; returns success | retry | failed | cancelled | held | refused |
    skipped. `allow`: the endpoint policy's exceptions (default: `settings.allow_list()`)."""
    [outcome] = attempt_many(
        factory,
        [(delivery_id, claim)],
        settings=settings,
        clock=clock,
        allow=allow,
        resolve=resolve,
    )
    return outcome


def attempt_many(
    factory: sessionmaker[Session],
    items: Sequence[tuple[int, str]],
    *,
    settings: DeliverySettings,
    clock: Clock = store.utcnow,
    allow: AllowList | None = None,
    resolve: Resolver = system_resolve,
) -> list[str]:
    """One attempt for each `(delivery pk, claim)`, outcomes in the same order: one
    transaction prepares them all, the requests go out one after the other (a relay hands a
    batch out for one subscription, i.e. one receiver), one transaction records them all. Why
    batches: under load the two transactions and the broker message of every single attempt
    cost the worker more than the attempt itself (issue 12)."""
    with transaction(factory) as session:
        prepared = _prepare_many(session, items, settings, clock())
    policy = allow_list() if allow is None else allow
    sent: list[tuple[Request, Result]] = []
    for request in prepared:
        if isinstance(request, str):
            continue
        if request.unusable is not None:
            result = Result(False, None, request.unusable, 0)
        else:
            result = post(
                request.endpoint,
                request.body,
                request.headers,
                timeout=min(settings.timeout_seconds, request.timeout or settings.timeout_seconds),
                allow=policy,
                resolve=resolve,
            )
        sent.append((request, result))
    recorded: list[str] = []
    if sent:
        with transaction(factory) as session:
            recorded = _record_many(session, sent, settings, clock())
    for (request, result), outcome in zip(sent, recorded, strict=True):
        log.info(
            "delivery %s to Subscription/%s attempt %s: %s%s",
            request.delivery_pk,
            request.subscription_id,
            request.number,
            outcome,
            f" ({result.detail or result.error})" if result.error else "",
        )
    by_pk = {
        request.delivery_pk: outcome for (request, _), outcome in zip(sent, recorded, strict=True)
    }
    return [p if isinstance(p, str) else by_pk[p.delivery_pk] for p in prepared]
