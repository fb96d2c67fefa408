"""What Subscriptions do when the store writes a version (the store's write hook, installed
by `install` when a process starts; `resources.save` calls it).

Runs inside the writer's transaction, before the version's JSON is serialised:

- a Subscription is checked and normalised (`accept`): criteria and channel must be usable
  (else 422), the secret (optional) is taken out and kept aside, `requested` becomes `active`;
- a Flag or CommunicationRequest version gets one delivery row per matching subscription
  (`record`): committed with the alert change or rolled back with it, so every change is
  notified once and a change that never happened never is.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

import orjson
from sqlalchemy.orm import Session

from service.config import Settings
from service.errors import FHIRError, Issue
from service.fhir.index import IndexEntry, extract
from service.store.hooks import install_save_hook
from service.subscriptions import deliveries, endpoint_policy, topics
from service.subscriptions.channel import parse_channel, take_secret
from service.subscriptions.collecting import collecting
from service.subscriptions.criteria import SUBSCRIBABLE_TYPES, CriteriaError, parse_criteria
from service.subscriptions.lifecycle import ended
from service.subscriptions.models import SubscriptionSecret
from service.subscriptions.settings import allow_list
from service.subscriptions.topic_subscription import is_topic_based, parse_topic_subscription


def install(settings: Settings | None = None) -> None:
    """Register `on_save` as the store's write hook. Called by every process that writes
    resources, when it starts: the API (`create_app`) and the Celery worker (`celery_app`).
    `settings`: the process's own; their endpoint-policy exceptions
    (`subscription_allowed_hosts`) apply to Subscription writes besides the environment's."""
    install_save_hook(partial(on_save, settings=settings))


def on_save(
    session: Session,
    *,
    resource_type: str,
    resource_id: str,
    version_id: int,
    resource: dict[str, Any],
    previous: bytes | None,
    now: datetime,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Returns the resource to store (changed only for Subscriptions). `previous` is the
    current version's JSON, None when there is none (or it is deleted)."""
    if resource_type == "Subscription":
        return accept(
            session,
            resource_id=resource_id,
            resource=resource,
            previous=previous,
            now=now,
            settings=settings,
        )
    if resource_type in SUBSCRIBABLE_TYPES:
        # Search values of the new version, once for both kinds of subscription.
        index = extract(resource_type, resource_id, resource)
        record(
            session,
            resource_type=resource_type,
            resource_id=resource_id,
            version_id=version_id,
            index=index,
            now=now,
        )
        topics.record_events(
            session,
            resource_type=resource_type,
            resource_id=resource_id,
            version_id=version_id,
            resource=resource,
            index=index,
            previous=previous,
            now=now,
        )
    return resource


def record(
    session: Session,
    *,
    resource_type: str,
    resource_id: str,
    version_id: int,
    index: IndexEntry,
    now: datetime,
) -> int:
    recorded = 0
    for subscription in collecting(session):
        criteria = subscription.criteria
        if criteria is None or ended(subscription.body, now):
            continue  # a topic-based one (topics.record_events), or past its end
        if not criteria.matches(resource_type, resource_id, index):
            continue
        subscription_id = subscription.id
        deliveries.record(
            session,
            subscription_id=subscription_id,
            resource_type=resource_type,
            resource_id=resource_id,
            version_id=version_id,
            now=now,
        )
        recorded += 1
    return recorded


def accept(
    session: Session,
    *,
    resource_id: str,
    resource: dict[str, Any],
    previous: bytes | None,
    now: datetime,
    settings: Settings | None = None,
) -> dict[str, Any]:
    body, secret, issues = take_secret(resource)
    if not isinstance(body.get("reason"), str) or not body["reason"].strip():
        issues.append(
            Issue("error", "required", "Subscription.reason is required", ("Subscription.reason",))
        )
    status = body.get("status")
    if status is None:
        issues.append(
            Issue("error", "required", "Subscription.status is required", ("Subscription.status",))
        )
    if body.get("criteria") is None:
        issues.append(
            Issue(
                "error", "required", "Subscription.criteria is required", ("Subscription.criteria",)
            )
        )
    elif is_topic_based(body):  # the Backport IG's topic canonical (topic_subscription.py)
        issues += parse_topic_subscription(body)[1]
    else:
        try:
            parse_criteria(body["criteria"])
        except CriteriaError as exc:
            issues.append(Issue("error", "not-supported", str(exc), ("Subscription.criteria",)))
    channel, channel_issues = parse_channel(body)
    issues += channel_issues
    if channel is not None and status in ("requested", "active"):
        # SSRF: the URL alone here (no DNS inside a transaction); names are resolved and
        # checked again before every delivery. Server-set `error` and client `off` send nothing.
        refused = endpoint_policy.check(channel.endpoint, None, allow_list(settings))
        if refused is not None:
            issues.append(
                Issue(
                    "error",
                    "value",
                    f"Subscription.channel.endpoint: {refused} (see "
                    "ALERTS_SUBSCRIPTION_ALLOWED_HOSTS)",
                    ("Subscription.channel.endpoint",),
                )
            )

    # The secret is optional (issue 14): a plain R4 Subscription, as any FHIR client sends it,
    # gets unsigned notifications and its receiver authenticates them by `channel.header`.
    stored_secret = session.get(SubscriptionSecret, resource_id)
    if issues:
        raise FHIRError(422, issues)

    if secret is None and previous is None and stored_secret is not None:
        # A re-create after a delete starts afresh: the old subscription's key must not sign.
        session.delete(stored_secret)
    elif secret is not None:
        if stored_secret is None:
            session.add(
                SubscriptionSecret(subscription_id=resource_id, secret=secret, updated_at=now)
            )
        else:
            stored_secret.secret = secret
            stored_secret.updated_at = now
    if status == "requested":  # the server accepts it: notifications start now
        body["status"] = "active"
    before = orjson.loads(previous) if previous is not None else None
    if body["status"] == "active":
        body.pop("error", None)
        if before is not None and before.get("status") == "error":
            deliveries.requeue_failed(session, resource_id, now=now)
    if is_topic_based(body):  # its counter, and a handshake when it becomes active
        topics.accepted(
            session,
            subscription_id=resource_id,
            body=body,
            previous=before,
            requested=status == "requested",
            now=now,
        )
    return body
