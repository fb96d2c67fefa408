"""The outbox relay: hands one coalesced evaluation per patient to the worker.

Runs as a thread of the API process. With a broker it publishes Celery tasks by name (the
service never imports the task code); on the embedded default the bootstrap gives it a
dispatcher that runs the same task in-process.

Safe with several API processes and hosts: each pass claims its rows (`FOR UPDATE SKIP
LOCKED`, see `outbox.claim`), so no row is handed out twice and every relay adds throughput.
A hand-off that fails is released at once; a dispatched row that is never completed (worker
killed, message lost) is handed out again after `redispatch_after`. Messages lost because the
broker restarted empty are noticed sooner, through the broker epoch (`CeleryDispatcher.
broker_reset`): the relay that sees the broker come back empty re-queues every row dispatched
before, so they are re-sent within a couple of seconds instead of after the stale timeout.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from service.polling import PollingThread
from service.store import outbox
from service.store.db import transaction
from service.store.resources import utcnow
from service.subscriptions.relay import DELIVER_TASK, DeliveryRelay

log = logging.getLogger(__name__)

Dispatcher = Callable[[str, int], None]

EVALUATE_TASK = "workers.tasks.evaluate_patient"

# Set (NX) in the broker's Redis by the first relay that finds it missing. Redis loses it
# exactly when it loses its queues (restart without persistence, flush), never otherwise.
EPOCH_KEY = "fhir-alerts:broker-epoch"


@lru_cache
def redis_client(broker_url: str) -> Any:
    """A small client on the broker's Redis (None for other brokers); short timeouts, so a
    check never hangs on a broker that is down."""
    if not broker_url.startswith(("redis://", "rediss://")):
        return None
    import redis

    return redis.Redis.from_url(broker_url, socket_timeout=2, socket_connect_timeout=2)


def ping_broker(broker_url: str) -> None:
    """Raises unless the broker answers (readiness)."""
    client = redis_client(broker_url)
    if client is not None:
        client.ping()
        return
    from celery import Celery

    with Celery(broker=broker_url).connection_for_write() as conn:
        conn.ensure_connection(max_retries=1)


class CeleryDispatcher:
    """Publishes `evaluate_patient(patient_id, upto)` to the broker by task name."""

    def __init__(self, broker_url: str, visibility_timeout: int) -> None:
        from celery import Celery

        self._app = Celery("fhir-alerts-relay", broker=broker_url)
        self._app.conf.broker_transport_options = {"visibility_timeout": visibility_timeout}
        self._app.conf.task_routes = {
            EVALUATE_TASK: {"queue": "evaluate"},
            DELIVER_TASK: {"queue": "deliver"},
        }

        self._broker_url = broker_url

    def __call__(self, patient_id: str, upto: int) -> None:
        self._app.send_task(EVALUATE_TASK, args=[patient_id, upto], queue="evaluate")

    def _redis_client(self) -> Any:
        return redis_client(self._broker_url)

    def broker_reset(self) -> bool:
        """True once each time the broker is found to have lost its data (its epoch key is
        gone): messages published before then are lost. Only the caller that re-creates the
        key gets True, so one relay among many re-queues. Raises while the broker is down."""
        client = self._redis_client()
        if client is None:  # not Redis: only the stale-dispatch timeout applies
            return False
        return bool(client.set(EPOCH_KEY, uuid.uuid4().hex, nx=True))

    def deliver(self, delivery_id: int, claim: str) -> None:
        """Publishes one notification attempt to the `deliver` queue."""
        self._app.send_task(DELIVER_TASK, args=[delivery_id, claim], queue="deliver")


class Relay(PollingThread):
    def __init__(
        self,
        factory: sessionmaker[Session],
        dispatch: Dispatcher,
        *,
        interval: float = 0.5,
        redispatch_after: float = 300.0,
        epoch_check_every: float = 1.0,
        batch: int = 100,
    ) -> None:
        super().__init__(name="outbox-relay", interval=interval)
        self._factory = factory
        self._dispatch = dispatch
        self._redispatch_after = redispatch_after
        self._broker_reset: Callable[[], bool] | None = getattr(dispatch, "broker_reset", None)
        self._epoch_check_every = epoch_check_every
        self._epoch_checked = float("-inf")
        # Small claims: while one relay publishes its batch, the others claim the next ones.
        self._batch = batch
        # A dispatcher that can also hand out notifications gets a delivery relay beside this
        # one (its own thread: a slow receiver never holds up evaluations).
        deliver = getattr(dispatch, "deliver", None)
        self._deliveries = DeliveryRelay(factory, deliver, interval=interval) if deliver else None

    def nudge(self) -> None:
        super().nudge()
        if self._deliveries is not None:
            self._deliveries.nudge()

    def _check_broker(self) -> None:
        """At most every `epoch_check_every` seconds: did the broker come back empty?"""
        if self._broker_reset is None:
            return
        now = time.monotonic()
        if now - self._epoch_checked < self._epoch_check_every:
            return
        self._epoch_checked = now
        try:
            reset = self._broker_reset()
        except Exception as exc:  # broker down: hand-offs fail and are retried meanwhile
            log.warning("broker epoch check failed: %s", type(exc).__name__)
            return
        if reset:
            with transaction(self._factory) as session:
                requeued = outbox.requeue_dispatched(session, before=utcnow())
            if requeued:
                log.warning("broker lost its queues: %d dispatched rows handed out again", requeued)

    def run_once(self) -> int:
        self._check_broker()
        with transaction(self._factory) as session:
            items = outbox.claim(
                session, redispatch_after=self._redispatch_after, limit=self._batch
            )
        handed = 0
        for n, item in enumerate(items):
            try:
                self._dispatch(item.patient_id, item.upto)
            except Exception as exc:
                # The broker is most likely down: give the rest of the batch back at once
                # rather than waiting out a publish timeout for each row.
                log.warning(
                    "evaluation hand-off failed (%s); %d claimed rows released",
                    type(exc).__name__,
                    len(items) - n,
                )
                with transaction(self._factory) as session:
                    for unsent in items[n:]:
                        outbox.release(session, unsent)
                break
            handed += 1
        return handed

    def start(self) -> None:
        super().start()
        if self._deliveries is not None:
            self._deliveries.start()

    def stop(self) -> None:
        if self._deliveries is not None:
            self._deliveries.stop()
        super().stop()
