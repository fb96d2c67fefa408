"""Prometheus metrics shared by the API processes and the workers (`prometheus-client`).

Counters and histograms live in the process that observes them: requests and stored resources
in the API, evaluation duration and write→alert delay wherever the evaluation runs (the API
process on the embedded default, Celery worker processes with a broker). With several
processes, set `PROMETHEUS_MULTIPROC_DIR` to a directory that every process of a host writes
to (`serve --workers N` sets one itself): `/metrics` then sums all of them, workers included.
Gauges that describe shared state (outbox depth, open alerts, deliveries) are read from the
database at scrape time, so any API process reports the same figures. Nothing here carries
patient data: labels are route templates, resource types, priorities and outcomes.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session, sessionmaker

from contract import PRIORITY_ORDER

__all__ = ["CONTENT_TYPE_LATEST", "render"]


def _per_host_process_files() -> None:
    """In multiprocess mode, name each process's files by host *and* pid: containers sharing
    one metrics volume all number their processes from 1, and two processes writing one file
    would corrupt it."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        host = socket.gethostname().replace("_", "-").replace("/", "-")
        values.ValueClass = values.MultiProcessValue(  # type: ignore[no-untyped-call]
            lambda: f"{host}-{os.getpid()}"
        )


_per_host_process_files()  # before any metric below is created

REQUESTS = Counter(
    "fhir_alerts_http_requests",
    "HTTP requests answered, by method, route template and status code",
    ["method", "route", "status"],
)
REQUEST_SECONDS = Histogram(
    "fhir_alerts_http_request_seconds",
    "Time to answer an HTTP request, by method and route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RESOURCES_STORED = Counter(
    "fhir_alerts_resources_stored",
    "Resource versions stored (client writes and the alerts the evaluations write), by type",
    ["type"],
)
EVALUATIONS = Counter(
    "fhir_alerts_evaluations",
    "Patient evaluations run, by result (alerted = wrote a Flag or CommunicationRequest)",
    ["result"],
)
EVALUATION_SECONDS = Histogram(
    "fhir_alerts_evaluation_seconds",
    "Duration of one patient evaluation (lock, load, rules, writes, commit)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
WRITE_TO_ALERT_SECONDS = Histogram(
    "fhir_alerts_write_to_alert_seconds",
    "From the oldest stored write an evaluation covered to the commit of the alert it wrote",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800),
)


def evaluated(seconds: float, *, alerted: bool, requested_at: datetime | None) -> None:
    """Called by the evaluation after its commit. `requested_at`: naive UTC creation time of
    the oldest outbox row it covered."""
    EVALUATIONS.labels("alerted" if alerted else "unchanged").inc()
    EVALUATION_SECONDS.observe(seconds)
    if alerted and requested_at is not None:
        from service.store.resources import utcnow

        WRITE_TO_ALERT_SECONDS.observe(max(0.0, (utcnow() - requested_at).total_seconds()))


_hooked = False


def count_stored_resources() -> None:
    """Count every resource version insert, in whatever module writes it (idempotent)."""
    global _hooked
    if _hooked:
        return
    from service.store.models import ResourceVersion

    table = ResourceVersion.__table__

    def after_execute(
        _conn: Any,
        clause: Any,
        multiparams: Any,
        params: Any,
        _options: Any,
        _result: Any,
    ) -> None:
        if getattr(clause, "is_insert", False) and getattr(clause, "table", None) is table:
            rows = multiparams if isinstance(multiparams, list | tuple) and multiparams else []
            if not rows and params:
                rows = [params]
            for row in rows:
                if isinstance(row, dict):
                    RESOURCES_STORED.labels(str(row.get("type", "unknown"))).inc()

    event.listen(Engine, "after_execute", after_execute)
    _hooked = True


class StateCollector(Collector):
    """Pipeline state read from the database at scrape time (same answer from every API)."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from service.store import outbox
        from service.store.db import transaction
        from service.store.models import Episode
        from service.store.resources import utcnow
        from service.subscriptions.models import Delivery, DeliveryAttempt

        with transaction(self._factory) as session:
            depth = outbox.depth(session)
            open_states = list(
                session.scalars(select(Episode.state).where(Episode.open_key.is_not(None)))
            )
            statuses = session.execute(
                select(Delivery.status, func.count()).group_by(Delivery.status)
            ).all()
            outcomes = session.execute(
                select(DeliveryAttempt.outcome, func.count()).group_by(DeliveryAttempt.outcome)
            ).all()
        yield GaugeMetricFamily(
            "fhir_alerts_outbox_pending_patients",
            "Patients with stored writes not yet evaluated (= GET /ops/backlog)",
            value=depth.pending,
        )
        yield GaugeMetricFamily(
            "fhir_alerts_outbox_rows", "Outbox rows not yet completed", value=depth.rows
        )
        age = (utcnow() - depth.oldest).total_seconds() if depth.oldest is not None else 0.0
        yield GaugeMetricFamily(
            "fhir_alerts_outbox_oldest_age_seconds",
            "Age of the oldest outbox row not yet completed (0 when empty)",
            value=max(0.0, age),
        )
        alerts = GaugeMetricFamily(
            "fhir_alerts_open_alerts",
            "Open alert episodes, by current priority",
            labels=["priority"],
        )
        for priority, count in _by_priority(open_states).items():
            alerts.add_metric([priority], count)
        yield alerts
        deliveries = GaugeMetricFamily(
            "fhir_alerts_deliveries",
            "Subscription notifications, by status (pending, delivered, failed, cancelled)",
            labels=["status"],
        )
        for status, count in statuses:
            deliveries.add_metric([status], count)
        yield deliveries
        attempts = GaugeMetricFamily(
            "fhir_alerts_delivery_attempts",
            "Notification attempts recorded in the delivery log, by outcome",
            labels=["outcome"],
        )
        for outcome, count in outcomes:
            attempts.add_metric([outcome], count)
        yield attempts


def _by_priority(states: list[str]) -> dict[str, int]:
    import orjson

    counts: dict[str, int] = {p: 0 for p in reversed(PRIORITY_ORDER)}  # most pressing first
    for raw in states:
        try:
            priority = orjson.loads(raw).get("priority")
        except (orjson.JSONDecodeError, AttributeError):
            continue
        if isinstance(priority, str):
            counts[priority] = counts.get(priority, 0) + 1
    return counts


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def render(factory: sessionmaker[Session]) -> bytes:
    """The text exposition: this process's (or, in multiprocess mode, every local process's)
    counters and histograms, then the database-derived gauges."""
    started = time.perf_counter()
    if multiprocess_dir():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        own = generate_latest(registry)
    else:
        own = generate_latest(REGISTRY)
    state = CollectorRegistry()
    state.register(StateCollector(factory))
    scrape = (
        "# HELP fhir_alerts_scrape_seconds Time to collect this page\n"
        "# TYPE fhir_alerts_scrape_seconds gauge\n"
        f"fhir_alerts_scrape_seconds {time.perf_counter() - started:.6f}\n"
    )
    return own + generate_latest(state) + scrape.encode()


count_stored_resources()  # importing this module (API or worker) starts counting stored writes
