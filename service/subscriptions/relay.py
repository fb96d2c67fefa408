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
import threading
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from service.store.db import transaction
from service.store.resources import utcnow
from service.subscriptions import deliveries
from service.subscriptions.settings import DeliverySettings

log = logging.getLogger(__name__)

DELIVER_TASK = "workers.tasks.deliver_notification"


class DeliveryDispatcher(Protocol):
    def __call__(self, delivery_id: int, claim: str) -> None: ...


class DeliveryRelay:
    def __init__(
        self,
        factory: sessionmaker[Session],
        dispatch: DeliveryDispatcher,
        *,
        interval: float = 0.5,
        settings: DeliverySettings | None = None,
    ) -> None:
        self._factory = factory
        self._dispatch = dispatch
        self._interval = interval
        self._settings = settings or DeliverySettings()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def nudge(self) -> None:
        self._wake.set()

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

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                handed = self.run_once()
            except Exception:
                log.exception("delivery relay pass failed; retrying")
                handed = 0
            if not handed:
                self._wake.wait(self._interval)
                self._wake.clear()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="delivery-relay", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
