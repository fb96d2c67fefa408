"""Who may receive what through a Subscription.

A notification is a read: with a `full-resource` payload it carries the alert (patient data) to
an address of the subscriber's choosing. So writing a Subscription needs, besides the
Subscription write scope the routes check, *read* scope on the type its criteria name; and the
principal that wrote it is recorded with its scopes, so every delivery checks again that the
owner may read what is sent (a subscription written before this rule, or whose recorded owner
lacks the scope, is not served). Scopes are judged only by `service.auth.Principal`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from contract.topics import TOPIC_RESOURCE_TYPE, topic_of
from service.auth import Principal
from service.errors import FHIRError
from service.subscriptions.criteria import CriteriaError, parse_criteria
from service.subscriptions.models import SubscriptionOwner


def criteria_type(subscription: Mapping[str, Any]) -> str | None:
    """The resource type the subscription's criteria name (None when they do not parse); for a
    topic-based one, the type its topic is about (every topic: CommunicationRequest)."""
    criteria = subscription.get("criteria")
    if isinstance(criteria, str) and topic_of(criteria) is not None:
        return TOPIC_RESOURCE_TYPE
    try:
        return parse_criteria(subscription.get("criteria", "")).resource_type
    except CriteriaError:
        return None


def refusal(principal: Principal, subscription: Mapping[str, Any]) -> str | None:
    """Why this principal may not receive this subscription's notifications, or None."""
    rtype = criteria_type(subscription)
    if rtype is None:
        return "the subscription's criteria cannot be used"
    if not principal.allows(rtype, "read"):
        return f"the subscription's owner has no scope allowing read on {rtype}"
    return None


def authorize_write(
    session: Session, principal: Principal, subscription_id: str, subscription: Mapping[str, Any]
) -> None:
    """Called for every create or update of a Subscription (alone or in a Bundle), after the
    store accepted it: 403 unless the writer may read what the criteria select; otherwise the
    writer becomes the owner whose scopes deliveries are checked against."""
    rtype = criteria_type(subscription)
    if rtype is not None and not principal.allows(rtype, "read"):
        raise FHIRError.of(
            403,
            "forbidden",
            f"A Subscription on {rtype} needs a token with read scope on {rtype}: its "
            "notifications carry that data",
            ("Subscription.criteria",),
        )
    row = session.get(SubscriptionOwner, subscription_id)
    scopes = " ".join(sorted(principal.scopes))
    now = _now()
    if row is None:
        session.add(
            SubscriptionOwner(
                subscription_id=subscription_id,
                subject=principal.subject[:255],
                scopes=scopes,
                updated_at=now,
            )
        )
    else:
        row.subject = principal.subject[:255]
        row.scopes = scopes
        row.updated_at = now


def recorded_owner(subject: str | None, scopes: str | None) -> Principal | None:
    """An owner row's columns as a Principal (None: no row), for callers that read the row
    together with others in one statement (the delivery attempt)."""
    if subject is None or scopes is None:
        return None
    return Principal(subject, frozenset(scopes.split()))


def owner_refusal(principal: Principal | None, subscription: Mapping[str, Any]) -> str | None:
    """Why a notification of this subscription must not be sent to its recorded owner now, or
    None (`principal` None: no owner was recorded)."""
    if principal is None:
        return (
            "the subscription has no recorded owner; update it with a token that has read "
            "scope on its criteria's type"
        )
    return refusal(principal, subscription)


def _now() -> datetime:
    from service.store.resources import utcnow  # the store imports this package: import late

    return utcnow()
