"""The outbox relay: hands one coalesced evaluation per patient to the worker.

Runs as a thread of the API process. With a broker it publishes Celery tasks by name (the
service never imports the task code); on the embedded default the bootstrap gives it a
dispatcher that runs the same task in-process. Rows are marked dispatched only after the
hand-off succeeded, and stale dispatched rows are handed out again, so a broker outage or a
killed worker delays an evaluation but never loses it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from service.store import outbox
from service.store.db import transaction
from service.subscriptions.relay import DELIVER_TASK, DeliveryRelay

log = logging.getLogger(__name__)

Dispatcher = Callable[[str, int], None]

EVALUATE_TASK = "workers.tasks.evaluate_patient"


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

    def __call__(self, patient_id: str, upto: int) -> None:
        self._app.send_task(EVALUATE_TASK, args=[patient_id, upto], queue="evaluate")

    def deliver(self, delivery_id: int, claim: str) -> None:
        """Publishes one notification attempt to the `deliver` queue."""
        self._app.send_task(DELIVER_TASK, args=[delivery_id, claim], queue="deliver")


class Relay:
    def __init__(
        self,
        factory: sessionmaker[Session],
        dispatch: Dispatcher,
        *,
        interval: float = 0.5,
        redispatch_after: float = 300.0,
    ) -> None:
        self._factory = factory
        self._dispatch = dispatch
        self._interval = interval
        self._redispatch_after = redispatch_after
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # A dispatcher that can also hand out notifications gets a delivery relay beside this
        # one (its own thread: a slow receiver never holds up evaluations).
        deliver = getattr(dispatch, "deliver", None)
        self._deliveries = DeliveryRelay(factory, deliver, interval=interval) if deliver else None

    def nudge(self) -> None:
        """A write just committed: look now rather than at the next tick."""
        self._wake.set()
        if self._deliveries is not None:
            self._deliveries.nudge()

    def run_once(self) -> int:
        with transaction(self._factory) as session:
            items = outbox.due(session, redispatch_after=self._redispatch_after)
        handed = 0
        for item in items:
            try:
                self._dispatch(item.patient_id, item.upto)
            except Exception:
                log.exception("evaluation hand-off failed for Patient/%s", item.patient_id)
                continue
            with transaction(self._factory) as session:
                outbox.mark_dispatched(session, item)
            handed += 1
        return handed

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("outbox relay pass failed; retrying")
            self._wake.wait(self._interval)
            self._wake.clear()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="outbox-relay", daemon=True)
            self._thread.start()
        if self._deliveries is not None:
            self._deliveries.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._deliveries is not None:
            self._deliveries.stop()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
