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

A commit that wrote outbox rows wakes the relay (`wakeups.OUTBOX`: in this process directly, in
another API process through PostgreSQL NOTIFY); its poll interval is only the safety net.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from service.polling import RELAY_PASS_GAP_SECONDS, PollingThread
from service.store import outbox, wakeups
from service.store.db import transaction
from service.store.resources import utcnow
from service.subscriptions.deliveries import Claimed
from service.subscriptions.relay import DELIVER_MANY_TASK, DELIVER_TASK, DeliveryRelay

log = logging.getLogger(__name__)

Dispatcher = Callable[[str, int], None]

EVALUATE_TASK = "workers.tasks.evaluate_patient"
EVALUATE_MANY_TASK = "workers.tasks.evaluate_patients"
# Patients per batched evaluation (one transaction on the worker): large enough that a busy
# relay pays a few statements per batch instead of a dozen per patient, small enough that a
# claim of 100 still spreads over several workers.
EVALUATION_BATCH = 25

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
            EVALUATE_MANY_TASK: {"queue": "evaluate"},
            DELIVER_TASK: {"queue": "deliver"},
            DELIVER_MANY_TASK: {"queue": "deliver"},
        }

        self._broker_url = broker_url

    def __call__(self, patient_id: str, upto: int) -> None:
        self._app.send_task(EVALUATE_TASK, args=[patient_id, upto], queue="evaluate")

    def evaluate_many(self, items: list[tuple[str, int]]) -> None:
        """Several patients as one `evaluate_patients` message (one transaction there)."""
        if len(items) == 1:
            self(*items[0])
            return
        self._app.send_task(EVALUATE_MANY_TASK, args=[[list(i) for i in items]], queue="evaluate")

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

    def deliver(self, items: Sequence[Claimed]) -> None:
        """Publishes a batch of notification attempts (one subscription's) to the `deliver`
        queue as one message."""
        self._app.send_task(
            DELIVER_MANY_TASK, args=[[[i.pk, i.claim] for i in items]], queue="deliver"
        )


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
        super().__init__(
            name="outbox-relay",
            interval=interval,
            wake_on=wakeups.Channel(wakeups.factory_key(factory), wakeups.OUTBOX),
            min_gap=RELAY_PASS_GAP_SECONDS,
        )
        self._factory = factory
        self._dispatch = dispatch
        self._redispatch_after = redispatch_after
        self._broker_reset: Callable[[], bool] | None = getattr(dispatch, "broker_reset", None)
        self._epoch_check_every = epoch_check_every
        self._epoch_checked = float("-inf")
        # Small claims: while one relay publishes its batch, the others claim the next ones.
        self._batch = batch
        self._claim_was_full = False
        # A dispatcher that can also hand out notifications gets a delivery relay beside this
        # one (its own thread: a slow receiver never holds up evaluations).
        deliver = getattr(dispatch, "deliver", None)
        self._deliveries = DeliveryRelay(factory, deliver, interval=interval) if deliver else None

    # `nudge` (the unit of work's, after a write) wakes this relay only: the delivery relay has
    # its own wake-up, from the commits that record deliveries, and a pass of it per API write
    # would only add claim queries under load.

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

    def saturated(self, handed: int) -> bool:
        """Only a full claim means rows are surely left: after a partial one the relay waits
        for the next commit's wake-up (set already if rows came in during the pass) instead of
        paying an empty claim transaction after every hand-off."""
        return self._claim_was_full

    def run_once(self) -> int:
        self._check_broker()
        with transaction(self._factory) as session:
            items = outbox.claim(
                session, redispatch_after=self._redispatch_after, limit=self._batch
            )
        # The limit counts rows (several per patient): a full claim leaves rows behind.
        self._claim_was_full = sum(len(item.pks) for item in items) >= self._batch
        many: Callable[[list[tuple[str, int]]], None] | None = getattr(
            self._dispatch, "evaluate_many", None
        )
        size = EVALUATION_BATCH if many is not None else 1
        handed = 0
        for start in range(0, len(items), size):
            chunk = items[start : start + size]
            try:
                if many is not None:
                    many([(item.patient_id, item.upto) for item in chunk])
                else:
                    self._dispatch(chunk[0].patient_id, chunk[0].upto)
            except Exception as exc:
                # The broker is most likely down: give the rest of the batch back at once
                # rather than waiting out a publish timeout for each row.
                log.warning(
                    "evaluation hand-off failed (%s); %d claimed rows released",
                    type(exc).__name__,
                    len(items) - start,
                )
                with transaction(self._factory) as session:
                    for unsent in items[start:]:
                        outbox.release(session, unsent)
                break
            handed += len(chunk)
        return handed

    def start(self) -> None:
        super().start()
        if self._deliveries is not None:
            self._deliveries.start()

    def stop(self) -> None:
        if self._deliveries is not None:
            self._deliveries.stop()
        super().stop()
        close: Callable[[], None] | None = getattr(self._dispatch, "close", None)
        if close is not None:  # e.g. the in-process dispatcher's delivery threads
            close()
