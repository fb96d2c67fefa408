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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.store import resources as store
from service.store import wakeups
from service.store.db import transaction
from service.store.models import ResourceVersion
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


def _settle(row: Delivery, status: str, reason: str) -> str:
    row.status = status
    row.last_error = reason[:255]
    row.claim = None
    row.locked_until = None
    return status


def _prepare(
    session: Session, delivery_id: int, claim: str, settings: DeliverySettings, now: datetime
) -> Request | str:
    """The request to send, or an outcome word when there is nothing to attempt."""
    row = session.get(Delivery, delivery_id, with_for_update=True)
    if row is None or row.status != PENDING or row.claim != claim:
        return "skipped"  # a duplicate hand-off, or already settled
    subscription = store.read(session, "Subscription", row.subscription_id)
    if subscription is None or subscription.deleted:
        return _settle(row, CANCELLED, "subscription deleted")
    resource = subscription.json()
    status = resource.get("status")
    if status == "off":
        return _settle(row, CANCELLED, "subscription is off")
    row.claim = None
    if status != "active":  # in error: held until the client reactivates it
        row.locked_until = None
        return "held"
    refused = access.delivery_refusal(session, row.subscription_id, resource)
    if refused is not None:  # issue 10: the owner may not read what would be sent
        _settle(row, FAILED, refused)
        put_in_error(session, row.subscription_id, f"not delivered: {refused}", now=now)
        log.warning(
            "delivery %s to Subscription/%s refused: %s", row.pk, row.subscription_id, refused
        )
        return "refused"
    row.locked_until = now + timedelta(seconds=settings.in_flight_seconds)
    previous = session.scalar(
        select(func.max(DeliveryAttempt.number)).where(DeliveryAttempt.delivery_pk == row.pk)
    )
    number = (previous or 0) + 1

    channel, _issues = parse_channel(resource)
    secret = session.get(SubscriptionSecret, row.subscription_id)
    if channel is None:  # validated on write; only a damaged row gets here
        reason = "subscription channel unusable"
        return Request(row.pk, row.subscription_id, number, now, "", b"", {}, reason)
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
            return _settle(row, CANCELLED, "topic event not found")
        body = built
        mime = mime or "application/fhir+json"  # topic notifications always have a Bundle
        timeout = parsed.timeout_seconds
    else:
        version = session.get(ResourceVersion, (row.resource_type, row.resource_id, row.version_id))
        if version is None or version.deleted or version.content is None:
            return _settle(row, CANCELLED, "resource version not found")
        change = Change(
            resource_type=row.resource_type,
            resource_id=row.resource_id,
            version_id=row.version_id,
            last_updated=store.fhir_instant(version.last_updated),
            created=version.method == "POST",
            content=version.content,
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
    if secret is not None:  # without one (plain R4) the receiver trusts its channel.header
        headers[SIGNATURE_HEADER] = sign(secret.secret, body)
    headers[DELIVERY_HEADER] = row.uid
    headers[SUBSCRIPTION_HEADER] = f"Subscription/{row.subscription_id}"
    return Request(
        row.pk, row.subscription_id, number, now, channel.endpoint, body, headers, timeout=timeout
    )


def _record(
    session: Session,
    request: Request,
    result: Result,
    settings: DeliverySettings,
    now: datetime,
) -> str:
    row = session.get(Delivery, request.delivery_pk, with_for_update=True)
    assert row is not None  # deliveries are never deleted while their subscription lives
    session.add(
        DeliveryAttempt(
            delivery_pk=row.pk,
            number=request.number,
            started_at=request.started_at,
            duration_ms=result.duration_ms,
            outcome=SUCCESS if result.ok else FAILED,
            http_status=result.http_status,
            error=result.error[:255] if result.error else None,
        )
    )
    row.attempts += 1
    row.claim = None
    row.locked_until = None
    if result.ok:
        row.status = SUCCESS
        row.delivered_at = now
        row.last_error = None
        return SUCCESS
    row.last_error = (result.error or "failed")[:255]
    if row.status != PENDING:  # cancelled while we were sending: keep that
        return row.status
    if row.attempts >= settings.max_attempts:
        row.status = FAILED
        reason = (
            f"{row.attempts} delivery attempts failed (last: {row.last_error}); "
            "notifications are held until the status is set to requested again"
        )
        put_in_error(session, row.subscription_id, reason, now=now)
        log.warning(
            "delivery %s to Subscription/%s given up after %s attempts; subscription in error",
            row.pk,
            row.subscription_id,
            row.attempts,
        )
        return FAILED
    # Counted from the attempt's start, not its end: the log shows both, and their distance
    # must not tell a refused port from a silent one (the delivery log is no port scanner).
    delay = timedelta(seconds=settings.retry_delay(row.attempts))
    row.next_attempt_at = request.started_at + delay
    # The delivery relay (another process in production) learns the retry's time at once and
    # sleeps until then, rather than finding it at its next poll.
    wakeups.signal(session, wakeups.DELIVERIES)
    return "retry"


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
    with transaction(factory) as session:
        prepared = _prepare(session, delivery_id, claim, settings, clock())
    if isinstance(prepared, str):
        return prepared
    if prepared.unusable is not None:
        result = Result(False, None, prepared.unusable, 0)
    else:
        result = post(
            prepared.endpoint,
            prepared.body,
            prepared.headers,
            timeout=min(settings.timeout_seconds, prepared.timeout or settings.timeout_seconds),
            allow=allow_list() if allow is None else allow,
            resolve=resolve,
        )
    with transaction(factory) as session:
        outcome = _record(session, prepared, result, settings, clock())
    log.info(
        "delivery %s to Subscription/%s attempt %s: %s%s",
        prepared.delivery_pk,
        prepared.subscription_id,
        prepared.number,
        outcome,
        f" ({result.detail or result.error})" if result.error else "",
    )
    return outcome
