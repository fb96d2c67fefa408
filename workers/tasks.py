"""Celery tasks. They take ids, re-read state and are idempotent: running one twice, late, or
after a crash changes nothing that running it once did not."""

from __future__ import annotations

from celery import Task
from sqlalchemy.exc import DBAPIError, OperationalError

from service.config import Settings, get_settings
from service.store.db import session_factory
from workers.celery_app import celery_app
from workers.evaluation import VersionConflict
from workers.evaluation import evaluate_patient as run_evaluation

RETRYABLE = (OperationalError, DBAPIError, VersionConflict)

_configured: Settings | None = None


def configure(settings: Settings) -> None:
    """The embedded server hands its own settings to the in-process worker."""
    global _configured
    _configured = settings


def _settings() -> Settings:
    return _configured or get_settings()


@celery_app.task(  # type: ignore[untyped-decorator]
    bind=True,
    name="workers.tasks.evaluate_patient",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=RETRYABLE,
    retry_backoff=2,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=12,
    ignore_result=True,
)
def evaluate_patient(self: Task, patient_id: str, upto: int | None = None) -> list[str]:
    settings = _settings()
    outcome = run_evaluation(
        session_factory(settings.resolved_database_url),
        patient_id,
        settings=settings,
        upto=upto,
    )
    return list(outcome.events)
