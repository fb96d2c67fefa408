"""`$status` and `$events` of topic-based Subscriptions (Subscriptions R5 Backport IG, R4).

- `GET /fhir/Subscription/{id}/$status`, and type-level `GET /fhir/Subscription/$status`
  (`id` and `status` filters, repeated or comma-separated): a `searchset` Bundle with one
  SubscriptionStatus Parameters (`query-status`) per topic subscription, carrying
  `events-since-subscription-start`, so a receiver can see how many events it should have.
- `GET /fhir/Subscription/{id}/$events?eventsSinceNumber=&eventsUntilNumber=&content=`: a
  `history` Bundle, SubscriptionStatus (`query-event`) first, with every stored event in the
  range (inclusive; at most `topic_notifications.MAX_EVENTS` per call), so a receiver that
  was down fetches exactly what it missed. `content` (empty | id-only | full-resource) defaults
  to the subscription's own.

A token with Subscription read scope is needed; `$events` with id-only or full-resource
content also needs read scope on CommunicationRequest (it answers with the alerts, or their
ids). Unknown subscription: 404; a plain (criteria-search) one has no topic: 422.
Mounted before the generic FHIR routes, which would take `$status` for a resource id.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from contract.topics import TOPIC_RESOURCE_TYPE
from service.api.deps import FactoryDep, PrincipalDep
from service.api.responses import fhir_response
from service.errors import FHIRError, not_found
from service.store import resources
from service.store.db import transaction
from service.store.models import Resource
from service.subscriptions import topic_notifications
from service.subscriptions.channel import Content, parse_channel
from service.subscriptions.settings import DeliverySettings
from service.subscriptions.topic_payload import notification_bundle, status_parameters
from service.subscriptions.topic_subscription import TopicSubscription, topic_subscription

router = APIRouter(prefix="/fhir/Subscription")

_MAX_STATUSES = 1000


def _topic(session: Session, subscription_id: str) -> tuple[dict[str, Any], TopicSubscription]:
    stored = resources.read(session, "Subscription", subscription_id)
    if stored is None or stored.deleted:
        raise not_found(f"Subscription/{subscription_id} is not known")
    body = stored.json()
    parsed = topic_subscription(body)
    if parsed is None:
        raise FHIRError.of(
            422,
            "not-supported",
            f"Subscription/{subscription_id} is not topic-based: $status and $events are for "
            "subscriptions to a topic",
        )
    return body, parsed


def _content(body: Mapping[str, Any]) -> Content:
    channel, _ = parse_channel(body)
    return channel.content if channel is not None else Content.EMPTY


def _status_entry(session: Session, subscription_id: str, body: Mapping[str, Any]) -> Any:
    parsed = topic_subscription(body)
    assert parsed is not None
    entry_id = str(uuid.uuid4())
    return {
        "fullUrl": f"urn:uuid:{entry_id}",
        "resource": status_parameters(
            subscription_id=subscription_id,
            topic_url=parsed.url,
            status=str(body.get("status")),
            kind="query-status",
            events_since_start=topic_notifications.events_since_start(session, subscription_id),
            content=_content(body),
            parameters_id=entry_id,
        ),
        "search": {"mode": "match"},
    }


def _searchset(entries: list[Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "searchset",
        "timestamp": resources.fhir_instant(resources.utcnow()),
        "total": len(entries),
        "entry": entries,
    }


def _split(values: list[str] | None) -> list[str]:
    return [v for raw in values or () for v in raw.split(",") if v]


@router.get("/$status")
async def status_of_many(
    principal: PrincipalDep,
    factory: FactoryDep,
    id: Annotated[list[str] | None, Query()] = None,
    status: Annotated[list[str] | None, Query()] = None,
) -> Response:
    principal.require("Subscription", "read")
    ids, statuses = _split(id), _split(status)

    def run() -> dict[str, Any]:
        with transaction(factory) as session:
            stmt = select(Resource.id).where(
                Resource.type == "Subscription", Resource.deleted.is_(False)
            )
            if ids:
                stmt = stmt.where(Resource.id.in_(ids))
            if statuses:
                stmt = stmt.where(Resource.status.in_(statuses))
            found = session.scalars(stmt.order_by(Resource.id).limit(_MAX_STATUSES)).all()
            stored = resources.read_many(session, "Subscription", list(found))
            entries = [
                _status_entry(session, sid, stored[sid].json())
                for sid in sorted(stored)
                if topic_subscription(stored[sid].json()) is not None
            ]
            return _searchset(entries)

    return fhir_response(await run_in_threadpool(run))


@router.get("/{subscription_id}/$status")
async def status_of_one(
    subscription_id: str, principal: PrincipalDep, factory: FactoryDep
) -> Response:
    principal.require("Subscription", "read")

    def run() -> dict[str, Any]:
        with transaction(factory) as session:
            body, _parsed = _topic(session, subscription_id)
            return _searchset([_status_entry(session, subscription_id, body)])

    return fhir_response(await run_in_threadpool(run))


def _number(name: str, value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise FHIRError.of(400, "invalid", f"{name} must be an event number (1 or more)")
    return int(value)


@router.get("/{subscription_id}/$events")
async def events(
    subscription_id: str,
    principal: PrincipalDep,
    factory: FactoryDep,
    eventsSinceNumber: str | None = None,
    eventsUntilNumber: str | None = None,
    content: str | None = None,
) -> Response:
    principal.require("Subscription", "read")
    since = _number("eventsSinceNumber", eventsSinceNumber) or 1
    until = _number("eventsUntilNumber", eventsUntilNumber)
    if content is not None and content not in {c.value for c in Content}:
        raise FHIRError.of(400, "code-invalid", "content must be empty, id-only or full-resource")
    fhir_base = DeliverySettings().fhir_base  # as in notifications: entry.fullUrl, focus

    def run() -> dict[str, Any]:
        with transaction(factory) as session:
            body, parsed = _topic(session, subscription_id)
            level = Content(content) if content is not None else _content(body)
            if level is not Content.EMPTY:  # the answer names (or carries) the alerts
                principal.require(TOPIC_RESOURCE_TYPE, "read")
            count = topic_notifications.events_since_start(session, subscription_id)
            found = topic_notifications.stored_events(
                session, subscription_id, since=since, until=until
            )
            return notification_bundle(
                bundle_id=str(uuid.uuid4()),
                timestamp=resources.fhir_instant(resources.utcnow()),
                subscription_id=subscription_id,
                topic_url=parsed.url,
                status=str(body.get("status")),
                kind="query-event",
                events_since_start=count,
                events=found,
                content=level,
                fhir_base=fhir_base,
            )

    return fhir_response(await run_in_threadpool(run))
