"""Bootstrap for the embedded default: the API process runs the Celery task in-process.

The relay calls `evaluate_patient.apply()`: the same task object, retries and code path as on
a real worker, just without a broker in between.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI

from service.api.app import create_app
from service.config import Settings
from service.relay import Dispatcher
from workers import tasks
from workers.delivery import tasks as delivery_tasks
from workers.runtime import tune_gc

log = logging.getLogger(__name__)


class InProcessDispatcher:
    """Evaluations (outbox relay) and notification attempts (delivery relay), in-process."""

    def __init__(self, evaluate: Dispatcher) -> None:
        self._evaluate = evaluate

    def __call__(self, patient_id: str, upto: int) -> None:
        self._evaluate(patient_id, upto)

    def deliver(self, delivery_id: int, claim: str) -> None:
        result = delivery_tasks.deliver_notification.apply(args=[delivery_id, claim])
        if result.failed():
            # The delivery stays pending; the relay hands it out again when its lease ends.
            log.error("in-process delivery %s failed", delivery_id)


def in_process_dispatcher(settings: Settings) -> Dispatcher:
    tasks.configure(settings)
    delivery_tasks.configure(settings)

    def dispatch(patient_id: str, upto: int) -> None:
        result = tasks.evaluate_patient.apply(args=[patient_id, upto])
        if result.failed():
            # Left to the relay's stale-dispatch sweep: the outbox rows stay until done.
            log.error("in-process evaluation of Patient/%s failed", patient_id)

    return InProcessDispatcher(dispatch)


def build_app(settings: Settings, *, start_relay: bool = True) -> FastAPI:
    dispatcher = in_process_dispatcher(settings) if settings.embedded else None
    app = create_app(settings, dispatcher=dispatcher, start_relay=start_relay)
    if settings.embedded:
        tune_gc()  # this process is also the worker
    return app
