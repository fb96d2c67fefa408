"""Bootstrap for the embedded default: the API process runs the Celery task in-process.

The relay calls `evaluate_patient.apply()`: the same task object, retries and code path as on
a real worker, just without a broker in between. The app's Settings travel with each call (an
in-process apply is never serialised), so two apps in one process never share configuration.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service.api.app import create_app
from service.config import Settings
from service.relay import Dispatcher
from workers import dry_run, tasks
from workers.delivery import tasks as delivery_tasks
from workers.runtime import tune_gc

log = logging.getLogger(__name__)


class InProcessDispatcher:
    """Evaluations (outbox relay) and notification attempts (delivery relay), in-process."""

    def __init__(self, evaluate: Dispatcher, settings: Settings) -> None:
        self._evaluate = evaluate
        self._settings = settings

    def __call__(self, patient_id: str, upto: int) -> None:
        self._evaluate(patient_id, upto)

    def deliver(self, delivery_id: int, claim: str) -> None:
        result = delivery_tasks.deliver_notification.apply(
            args=[delivery_id, claim], kwargs={"settings": self._settings}
        )
        if result.failed():
            # The delivery stays pending; the relay hands it out again when its lease ends.
            log.error("in-process delivery %s failed", delivery_id)


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
