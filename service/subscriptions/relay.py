"""The delivery relay: hands due notifications to whoever makes the HTTP attempts.

A thread of the API process beside the outbox relay, never sharing its loop: a slow receiver
must not hold up evaluations. Like the outbox relay it only moves ids: the dispatcher publishes
`workers.tasks.deliver_notification(pk, claim)` to the `deliver` queue, or (embedded default)
runs that same task in-process. The schedule lives in the database (`next_attempt_at`), not in
broker countdowns, so hours of back-off survive restarts and never outlast a Redis visibility
timeout.
"""

from __future__ import annotations

import logging
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from service.polling import PollingThread
from service.store.db import transaction
from service.store.resources import utcnow
from service.subscriptions import deliveries
from service.subscriptions.settings import DeliverySettings

log = logging.getLogger(__name__)

DELIVER_TASK = "workers.tasks.deliver_notification"


class DeliveryDispatcher(Protocol):
    def __call__(self, delivery_id: int, claim: str) -> None: ...


class DeliveryRelay(PollingThread):
    def __init__(
        self,
        factory: sessionmaker[Session],
        dispatch: DeliveryDispatcher,
        *,
        interval: float = 0.5,
        settings: DeliverySettings | None = None,
    ) -> None:
        super().__init__(name="delivery-relay", interval=interval)
        self._factory = factory
        self._dispatch = dispatch
        self._settings = settings or DeliverySettings()

    def run_once(self) -> int:
        with transaction(self._factory) as session:
            claimed = deliveries.claim_due(
                session, now=utcnow(), lease=self._settings.claim_seconds
            )
        handed = 0
        for item in claimed:
            if self._stop.is_set():
                # Not handed out: free it for the next relay rather than waiting for the lease.
                with transaction(self._factory) as session:
                    deliveries.release(session, item)
                continue
            try:
                self._dispatch(item.pk, item.claim)
            except Exception:
                log.exception("delivery hand-off failed for delivery %s", item.pk)
                with transaction(self._factory) as session:
                    deliveries.release(session, item)
                continue
            handed += 1
        return handed
