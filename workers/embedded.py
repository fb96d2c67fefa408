"""Bootstrap for the embedded default: the API process runs the Celery task in-process.

The relay calls `evaluate_patient.apply()`: the same task object, retries and code path as on
a real worker, just without a broker in between. The app's Settings travel with each call (an
in-process apply is never serialised), so two apps in one process never share configuration.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service.api.app import create_app
from service.config import Settings
from service.relay import Dispatcher
from service.store import wakeups
from service.store.db import session_factory, transaction
from service.subscriptions import deliveries
from workers import dry_run, heartbeat, tasks
from workers.delivery import tasks as delivery_tasks
from workers.runtime import tune_gc

log = logging.getLogger(__name__)


class InProcessDispatcher:
    """Evaluations (outbox relay) and notification attempts (delivery relay), in-process.

    Evaluations run on the relay's thread, one at a time, as on a one-process worker. Delivery
    attempts run on a few threads of their own: an attempt waits for the receiver (up to the
    delivery timeout), and a slow receiver must not hold up everyone else's notifications.
    The hand-off is bounded (`delivery_threads` running plus as many waiting): when all are
    taken the relay waits, with the claims it holds still leased, instead of queueing without
    limit.
    """

    # 8: at 100 new alerts/s (trial: 500 patients, one receiver, embedded) 4 threads left
    # notifications 2.5-2.8 s behind, 16 slowed the API's own answers 3x; 8 gave 1.6-1.9 s.
    def __init__(self, evaluate: Dispatcher, settings: Settings, *, delivery_threads: int = 8):
        self._evaluate = evaluate
        self._settings = settings
        self._threads = delivery_threads
        self._slots = threading.BoundedSemaphore(2 * delivery_threads)
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closing = False
        self._deliveries_channel = wakeups.Channel(
            wakeups.database_key(settings.resolved_database_url), wakeups.DELIVERIES
        )

    def __call__(self, patient_id: str, upto: int) -> None:
        self._evaluate(patient_id, upto)

    def evaluate_many(self, items: list[tuple[str, int]]) -> None:
        """Several patients in one transaction (`workers.tasks.evaluate_patients`), which
        falls back to one by one itself if the batch fails."""
        if len(items) == 1:
            self._evaluate(*items[0])
            return
        result = tasks.evaluate_patients.apply(
            args=[[list(i) for i in items]], kwargs={"settings": self._settings}
        )
        if result.failed():
            # Left to the relay's stale-dispatch sweep: the outbox rows stay until done.
            log.error("in-process batch of %d evaluations failed", len(items))

    def deliver(self, items: Sequence[deliveries.Claimed]) -> None:
        """A batch of one subscription's deliveries, attempted on one of the threads."""
        self._slots.acquire()
        try:
            with self._lock:
                if self._closing:
                    raise RuntimeError("in-process delivery is shutting down")
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self._threads, "deliver")
                future = self._pool.submit(self._attempt, list(items))
        except BaseException:
            self._slots.release()
            raise  # the relay releases the claims
        future.add_done_callback(lambda _f: self._slots.release())

    def _attempt(self, items: list[deliveries.Claimed]) -> None:
        if self._closing:  # queued when the app stopped: free them for the next start at once
            try:
                factory = session_factory(self._settings.resolved_database_url)
                with transaction(factory) as session:
                    deliveries.release(session, items)
            except Exception as exc:  # left to their lease, as after a crash
                log.warning(
                    "deliveries %s not released (%s)", [i.pk for i in items], type(exc).__name__
                )
            return
        result = delivery_tasks.deliver_notifications.apply(
            args=[[[i.pk, i.claim] for i in items]], kwargs={"settings": self._settings}
        )
        if result.failed():
            # The deliveries stay pending; the relay hands them out again when the lease ends.
            log.error("in-process deliveries %s failed", [i.pk for i in items])
        elif "retry" in (result.result or ()):
            # The relay's last pass did not know this retry's time: let it look again, so the
            # retry goes out when due rather than at the next poll.
            wakeups.wake(self._deliveries_channel)

    def close(self) -> None:
        """The app stops (the relay calls this, after its threads ended): attempts under way
        finish, waiting ones are released. A later start makes a new pool."""
        with self._lock:
            self._closing = True
            pool, self._pool = self._pool, None
        try:
            if pool is not None:
                pool.shutdown(wait=True)
        finally:
            with self._lock:
                self._closing = False


def in_process_dispatcher(settings: Settings) -> Dispatcher:
    def dispatch(patient_id: str, upto: int) -> None:
        result = tasks.evaluate_patient.apply(
            args=[patient_id, upto], kwargs={"settings": settings}
        )
        if result.failed():
            # Left to the relay's stale-dispatch sweep: the outbox rows stay until done.
            log.error("in-process evaluation of Patient/%s failed", patient_id)

    return InProcessDispatcher(dispatch, settings)


def build_app(settings: Settings, *, start_relay: bool = True) -> FastAPI:
    dispatcher = in_process_dispatcher(settings) if settings.embedded else None
    app = create_app(
        settings,
        dispatcher=dispatcher,
        evaluator=dry_run.evaluator(settings),  # $evaluate: the worker's pure evaluation
        start_relay=start_relay,
    )
    if settings.embedded:
        tune_gc()  # this process is also the worker
        if start_relay and settings.escalation_interval_seconds > 0:
            _run_deadline_sweeper(app, settings)
        if start_relay:  # topic subscriptions' heartbeats (workers/heartbeat.py)
            heartbeat.run_heartbeat_checker(app, settings)
    return app


def _run_deadline_sweeper(app: FastAPI, settings: Settings) -> None:
    """The embedded equivalent of Celery beat's deadline sweep: a thread for the app's life."""
    from workers.escalation import DeadlineSweeper

    sweeper = DeadlineSweeper(app.state.session_factory, settings)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[None]:
        async with inner(a):
            sweeper.start()
            try:
                yield
            finally:
                sweeper.stop()

    app.router.lifespan_context = lifespan
    app.state.deadline_sweeper = sweeper
