"""The Celery application, configured from the same Settings as the API.

Crash safety is configuration here: `acks_late` + `reject_on_worker_lost` return a task to the
queue when its worker dies, prefetch 1 keeps a dying worker from holding more than it runs, and
the Redis visibility timeout bounds how long an unacknowledged task stays invisible. Queues are
split by job so delivery retries never starve evaluations.
"""

from __future__ import annotations

from celery import Celery
from celery.signals import worker_init, worker_process_init

from service.config import get_settings
from service.subscriptions import hook as subscription_hook
from service.subscriptions.settings import DeliverySettings
from workers.runtime import tune_gc


def make_celery() -> Celery:
    # The worker writes Flags and CommunicationRequests: their Subscription notifications are
    # recorded by the store's write hook, installed here when the worker process starts.
    subscription_hook.install()
    settings = get_settings()
    heartbeat_every = DeliverySettings().heartbeat_check_seconds or 5.0
    app = Celery(
        "fhir-alerts",
        broker=settings.broker_url or "memory://",
        include=["workers.tasks", "workers.delivery.tasks", "workers.heartbeat"],
    )
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        task_default_queue="evaluate",
        task_routes={
            "workers.tasks.evaluate_patient": {"queue": "evaluate"},
            "workers.tasks.deliver_*": {"queue": "deliver"},
            "workers.tasks.sweep_deadlines": {"queue": "evaluate"},
            "workers.tasks.check_heartbeats": {"queue": "deliver"},
        },
        # Closed-loop alerts: `celery -A workers.celery_app beat` (or `fhir-alerts worker
        # --beat`) sends the deadline sweep every interval; any worker runs it.
        beat_schedule={
            "alert-deadline-sweep": {
                "task": "workers.tasks.sweep_deadlines",
                "schedule": settings.escalation_interval_seconds or 30.0,
                "options": {
                    "queue": "evaluate",
                    "expires": settings.escalation_interval_seconds or 30.0,
                },
            },
            # Topic subscriptions' heartbeats (workers/heartbeat.py): a sibling of the sweep.
            "subscription-heartbeat-check": {
                "task": "workers.tasks.check_heartbeats",
                "schedule": heartbeat_every,
                "options": {"queue": "deliver", "expires": heartbeat_every},
            },
        },
        broker_transport_options={"visibility_timeout": settings.broker_visibility_timeout},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        task_time_limit=300,
        task_soft_time_limit=240,
        enable_utc=True,
    )
    return app


celery_app = make_celery()


@worker_process_init.connect  # type: ignore[untyped-decorator]
def _tune_worker_process(**_kwargs: object) -> None:
    tune_gc()


@worker_init.connect  # type: ignore[untyped-decorator]
def _serve_metrics(**_kwargs: object) -> None:
    """The worker's own /metrics, when configured (workers/metrics_exporter.py)."""
    from workers.metrics_exporter import start_exporter

    start_exporter(get_settings())
