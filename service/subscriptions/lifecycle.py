"""Server-side status changes of a Subscription (R4: the server owns `active` and `error`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from service.fhir.index import parse_date_range
from service.store import resources as store
from service.store.errors import VersionMismatch


def put_in_error(session: Session, subscription_id: str, reason: str, *, now: datetime) -> bool:
    """Store a new version with status `error` and `error` text; False when the subscription is
    no longer active (deleted, off, already in error), which leaves it as the client set it."""
    for _ in range(3):
        current = store.read(session, "Subscription", subscription_id)
        if current is None or current.deleted:
            return False
        body = current.json()
        if body.get("status") != "active":
            return False
        body["status"] = "error"
        body["error"] = reason
        try:
            store.save(
                session,
                resource_type="Subscription",
                resource_id=subscription_id,
                resource=body,
                if_match=str(current.version_id),
                now=now,
            )
        except VersionMismatch:  # the client changed it meanwhile: judge the new version
            continue
        return True
    return False


def ended(subscription: Mapping[str, Any], now: datetime) -> bool:
    """`Subscription.end` is in the past: no new notifications (plain and topic alike)."""
    end = subscription.get("end")
    rng = parse_date_range(end) if isinstance(end, str) else None
    return rng is not None and rng.end < now
