"""Heartbeats of topic-based subscriptions (Subscriptions Backport IG `heartbeatPeriod`).

A sibling of the deadline sweep, run the same two ways: by Celery beat on a broker deployment
(`workers.tasks.check_heartbeats`, scheduled in `workers/celery_app.py`), by a thread of the API
process on the embedded default (`HeartbeatChecker`, started by `workers.embedded.build_app`).
Both call `check`, which records a `heartbeat` delivery for every active topic subscription
whose last notification is older than its period (`service.subscriptions.topics`); the delivery
relay sends it like any other notification, with the same retries and log.

Safe with several processes: each subscription's counter row is locked while it is judged, so
two checkers record one heartbeat; and none is recorded while the last one is still pending.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings, get_settings
from service.polling import PollingThread
from service.store.db import session_factory, transaction
from service.store.resources import utcnow
from service.subscriptions import topics
from service.subscriptions.settings import DeliverySettings
from workers.celery_app import celery_app

log = logging.getLogger(__name__)

CHECK_TASK = "workers.tasks.check_heartbeats"


def check(factory: sessionmaker[Session], *, now: datetime | None = None) -> list[str]:
    """Record the heartbeats due now (naive UTC, the store's clock); their subscription ids."""
    with transaction(factory) as session:
        recorded = topics.record_heartbeats(session, now=now or utcnow())
    if recorded:
        log.info("heartbeats recorded for %s", ",".join(f"Subscription/{s}" for s in recorded))
    return recorded


@celery_app.task(name=CHECK_TASK, ignore_result=True)  # type: ignore[untyped-decorator]
def check_heartbeats() -> int:
    """The beat schedule's task: idempotent, takes nothing, re-reads everything."""
    settings = get_settings()
    return len(check(session_factory(settings.resolved_database_url)))


class HeartbeatChecker(PollingThread):
    """The embedded equivalent of the beat schedule: `check` every interval."""

    def __init__(self, factory: sessionmaker[Session], interval: float) -> None:
        super().__init__(name="heartbeat-check", interval=interval)
        self._factory = factory

    def run_once(self) -> int:
        check(self._factory)
        return 0  # always wait a full interval: the check is periodic, not a queue


def run_heartbeat_checker(app: FastAPI, _settings: Settings) -> None:
    """Start a `HeartbeatChecker` for the app's life (ALERTS_DELIVERY_HEARTBEAT_CHECK_SECONDS;
    0 turns it off)."""
    interval = DeliverySettings().heartbeat_check_seconds
    if interval <= 0:
        return
    checker = HeartbeatChecker(app.state.session_factory, interval)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[None]:
        async with inner(a):
            checker.start()
            try:
                yield
            finally:
                checker.stop()

    app.router.lifespan_context = lifespan
    app.state.heartbeat_checker = checker
