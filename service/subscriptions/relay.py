"""The delivery relay: hands due notifications to whoever makes the HTTP attempts.

A thread of the API process beside the outbox relay, never sharing its loop: a slow receiver
must not hold up evaluations. Like the outbox relay it only moves ids: the dispatcher publishes
`workers.tasks.deliver_notifications([[pk, claim], ...])` to the `deliver` queue, or (embedded
default) runs that same task in-process. A claim is handed out in batches of up to
`DELIVERY_BATCH` deliveries of one subscription (one receiver): one message and two
transactions per batch rather than per notification. The schedule lives in the database
(`next_attempt_at`), not in broker countdowns, so hours of back-off survive restarts and never
outlast a Redis visibility timeout.

It wakes when a transaction that recorded deliveries commits (`wakeups.DELIVERIES`: in this
process directly, from the Celery worker through PostgreSQL NOTIFY), and after an idle pass it
sleeps only until the next scheduled retry falls due; the poll interval is the safety net.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.polling import RELAY_PASS_GAP_SECONDS, PollingThread
from service.store import wakeups
from service.store.db import transaction
from service.store.resources import utcnow
from service.subscriptions import deliveries
from service.subscriptions.models import PENDING, Delivery
from service.subscriptions.settings import DeliverySettings

log = logging.getLogger(__name__)

DELIVER_TASK = "workers.tasks.deliver_notification"  # one delivery (older messages)
DELIVER_MANY_TASK = "workers.tasks.deliver_notifications"
# Deliveries of one subscription per hand-off. The attempts of a batch go out one after the
# other, so a batch to a receiver that times out takes up to this many timeouts.
DELIVERY_BATCH = 10


class DeliveryDispatcher(Protocol):
    def __call__(self, items: Sequence[deliveries.Claimed]) -> None: ...


def batches(claimed: Sequence[deliveries.Claimed]) -> list[list[deliveries.Claimed]]:
    """The claimed deliveries per subscription, oldest first, in runs of `DELIVERY_BATCH`."""
    by_subscription: dict[str, list[deliveries.Claimed]] = {}
    for item in claimed:
        by_subscription.setdefault(item.subscription_id, []).append(item)
    return [
        group[start : start + DELIVERY_BATCH]
        for group in by_subscription.values()
        for start in range(0, len(group), DELIVERY_BATCH)
    ]


class DeliveryRelay(PollingThread):
    def __init__(
        self,
        factory: sessionmaker[Session],
        dispatch: DeliveryDispatcher,
        *,
        interval: float = 0.5,
        settings: DeliverySettings | None = None,
    ) -> None:
        super().__init__(
            name="delivery-relay",
            interval=interval,
            wake_on=wakeups.Channel(wakeups.factory_key(factory), wakeups.DELIVERIES),
            min_gap=RELAY_PASS_GAP_SECONDS,
        )
        self._factory = factory
        self._dispatch = dispatch
        self._settings = settings or DeliverySettings()
        self._next_due: datetime | None = None

    def idle_wait(self) -> float:
        """Until the next scheduled retry (a few ms late, so it is due when claimed), at most
        the poll interval: a retry in 0.3 s is not made to wait for a 2 s poll."""
        if self._next_due is None:
            return self._interval
        until = (self._next_due - utcnow()).total_seconds() + 0.005
        return min(self._interval, max(until, 0.0))

    def run_once(self) -> int:
        with transaction(self._factory) as session:
            now = utcnow()
            claimed = deliveries.claim_due(session, now=now, lease=self._settings.claim_seconds)
            # Idle: when does the next retry fall due? Only future ones count (a due one that
            # was not claimed is held or in flight, and left to the poll), so this never spins.
            self._next_due = (
                None
                if claimed
                else session.scalar(
                    select(func.min(Delivery.next_attempt_at)).where(
                        Delivery.status == PENDING, Delivery.next_attempt_at > now
                    )
                )
            )
        handed = 0
        for batch in batches(claimed):
            if self._stop.is_set():
                # Not handed out: free it for the next relay rather than waiting for the lease.
                self._release(batch)
                continue
            try:
                self._dispatch(batch)
            except Exception:
                log.exception("delivery hand-off failed for deliveries %s", [i.pk for i in batch])
                self._release(batch)
                continue
            handed += len(batch)
        return handed

    def _release(self, batch: Sequence[deliveries.Claimed]) -> None:
        with transaction(self._factory) as session:
            deliveries.release(session, batch)
