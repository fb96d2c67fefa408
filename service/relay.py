"""The outbox relay: hands one coalesced evaluation per patient to the worker.

Runs as a thread of the API process. With a broker it publishes Celery tasks by name (the
service never imports the task code); on the embedded default the bootstrap gives it a
dispatcher that runs the same task in-process. Rows are marked dispatched only after the
hand-off succeeded, and stale dispatched rows are handed out again, so a broker outage or a
killed worker delays an evaluation but never loses it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from service.polling import PollingThread
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


class Relay(PollingThread):
    def __init__(
        self,
        factory: sessionmaker[Session],
        dispatch: Dispatcher,
        *,
        interval: float = 0.5,
        redispatch_after: float = 300.0,
    ) -> None:
        super().__init__(name="outbox-relay", interval=interval)
        self._factory = factory
        self._dispatch = dispatch
        self._redispatch_after = redispatch_after
        # A dispatcher that can also hand out notifications gets a delivery relay beside this
        # one (its own thread: a slow receiver never holds up evaluations).
        deliver = getattr(dispatch, "deliver", None)
        self._deliveries = DeliveryRelay(factory, deliver, interval=interval) if deliver else None

    def nudge(self) -> None:
        super().nudge()
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

    def start(self) -> None:
        super().start()
        if self._deliveries is not None:
            self._deliveries.start()

    def stop(self) -> None:
        if self._deliveries is not None:
            self._deliveries.stop()
        super().stop()
