"""Celery tasks. They take ids, re-read state and are idempotent: running one twice, late, or
after a crash changes nothing that running it once did not.

Settings come from one place: a task delivered by the broker runs with the worker process's
own (`get_settings()`, read once from the environment, as `celery_app` is); the embedded
bootstrap, which applies the same task in-process, passes its app's Settings with the call.
Nothing is configured into a module global."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from celery import Task
from sqlalchemy.exc import DBAPIError, OperationalError

from service.config import Settings, get_settings
from service.store.db import session_factory
from workers.celery_app import celery_app
from workers.evaluation import VersionConflict
from workers.evaluation import evaluate_patient as run_evaluation
from workers.evaluation import evaluate_patients as run_batch

log = logging.getLogger(__name__)

RETRYABLE = (OperationalError, DBAPIError, VersionConflict)
EVALUATE_QUEUE = "evaluate"
DELIVER_QUEUE = "deliver"


def _hand_out_notifications(settings: Settings) -> None:
    """On a worker, right after an evaluation that wrote alerts committed: one delivery-relay
    pass from here, publishing the notifications it recorded to the `deliver` queue. That
    evaluation did not NOTIFY the API's delivery relay (`hands_out`), which would only race
    this pass for the same rows; the claim (`FOR UPDATE SKIP LOCKED` and a lease) would keep
    them from being handed out twice anyway. Best effort: whatever fails here is left to the
    API's relay, which finds it at its next poll."""
    from service.subscriptions.deliveries import Claimed
    from service.subscriptions.relay import DeliveryRelay
    from service.subscriptions.settings import delivery_settings
    from workers.delivery.tasks import deliver_notifications

    def publish(items: Sequence[Claimed]) -> None:
        deliver_notifications.apply_async(
            args=[[[i.pk, i.claim] for i in items]], queue=DELIVER_QUEUE
        )

    try:
        DeliveryRelay(
            session_factory(settings.resolved_database_url),
            publish,
            settings=delivery_settings(),  # built once per environment, not per hand-off
        ).run_once()
    except Exception as exc:
        log.warning("worker-side notification hand-off failed (%s)", type(exc).__name__)


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
def evaluate_patient(
    self: Task, patient_id: str, upto: int | None = None, settings: Settings | None = None
) -> list[str]:
    """`settings`: the embedded app's, given in-process (never sent through a broker)."""
    settings = settings or get_settings()
    outcome = run_evaluation(
        session_factory(settings.resolved_database_url),
        patient_id,
        settings=settings,
        upto=upto,
        hands_out=not self.request.is_eager,  # a worker sends what it records (below)
    )
    if outcome.written and not self.request.is_eager:
        _hand_out_notifications(settings)
    return list(outcome.events)


@celery_app.task(  # type: ignore[untyped-decorator]
    bind=True,
    name="workers.tasks.evaluate_patients",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def evaluate_patients(
    self: Task, items: list[list[object]], settings: Settings | None = None
) -> int:
    """Several patients handed out together by the relay (`[[patient_id, upto], ...]`), in
    one transaction (workers/evaluation.evaluate_patients). If the batch fails as a whole,
    each patient becomes its own `evaluate_patient` with that task's retries: in-process
    (embedded) at once, on a worker as new messages, so one patient's trouble (a nurse's
    concurrent edit, a lock timeout) neither loses nor delays the others. Returns how many
    patients were evaluated in the batch (0 after a fallback)."""
    settings = settings or get_settings()
    pairs = [(str(p), None if u is None else int(str(u))) for p, u in items]
    try:
        outcomes = run_batch(
            session_factory(settings.resolved_database_url),
            pairs,
            settings=settings,
            hands_out=not self.request.is_eager,  # a worker sends what it records (below)
        )
    except Exception as exc:
        log.warning(
            "batch of %d evaluations failed (%s); evaluating them one by one",
            len(pairs),
            type(exc).__name__,
        )
        for patient_id, upto in pairs:
            if self.request.is_eager:  # in-process: the app's Settings travel with the call
                result = evaluate_patient.apply(
                    args=[patient_id, upto], kwargs={"settings": settings}
                )
                if result.failed():
                    log.error("in-process evaluation of Patient/%s failed", patient_id)
            else:
                evaluate_patient.apply_async(args=[patient_id, upto], queue=EVALUATE_QUEUE)
        return 0
    if any(o.written for o in outcomes) and not self.request.is_eager:
        _hand_out_notifications(settings)
    return len(outcomes)


@celery_app.task(  # type: ignore[untyped-decorator]
    name="workers.tasks.sweep_deadlines",
    acks_late=True,
    ignore_result=True,
    autoretry_for=(OperationalError, DBAPIError),
    retry_backoff=2,
    max_retries=3,
)
def sweep_deadlines(now: str | None = None, settings: Settings | None = None) -> dict[str, int]:
    """Celery beat's periodic deadline sweep (workers/escalation.py): escalate overdue alerts,
    wake expired snoozes. `now` (ISO date-time) is for tests; beat sends none (the real clock).
    Idempotent, so a beat tick delivered twice or two beats racing write nothing twice."""
    from datetime import datetime

    from workers.escalation import sweep

    settings = settings or get_settings()
    outcome = sweep(
        session_factory(settings.resolved_database_url),
        settings=settings,
        now=datetime.fromisoformat(now) if now else None,
    )
    return {
        "escalated": len(outcome.escalated),
        "withdrawn": len(outcome.withdrawn),
        "woken": len(outcome.woken),
        "acknowledged": len(outcome.acknowledged),
    }
