"""The Celery tasks of push delivery, routed to the `deliver` queue.

They take ids, re-read everything and make exactly one attempt per delivery; the next try is
scheduled in the database (`next_attempt_at`) and handed out again by the delivery relay, never
by a broker countdown, so hours of back-off survive restarts. No autoretry: a task that dies (or a
database error) leaves the delivery pending, and the relay hands it out once the lease ends.

Settings as for the evaluation task (workers/tasks.py): the worker process's own, or those the
embedded bootstrap passes with an in-process call; never a module global.
"""

from __future__ import annotations

from service.config import Settings, get_settings
from service.store.db import session_factory
from service.subscriptions.settings import allow_list, delivery_settings
from workers.celery_app import celery_app
from workers.delivery.attempt import attempt_many


@celery_app.task(  # type: ignore[untyped-decorator]
    name="workers.tasks.deliver_notifications",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def deliver_notifications(items: list[list[object]], settings: Settings | None = None) -> list[str]:
    """A batch the delivery relay handed out (`[[delivery pk, claim], ...]`, one subscription's
    deliveries): one attempt each (workers/delivery/attempt.attempt_many). `settings`: the
    embedded app's, given in-process (never sent through a broker); its endpoint-policy
    exceptions apply besides the environment's."""
    settings = settings or get_settings()
    return attempt_many(
        session_factory(settings.resolved_database_url),
        [(int(str(pk)), str(claim)) for pk, claim in items],
        settings=delivery_settings(),
        allow=allow_list(settings),
    )


@celery_app.task(  # type: ignore[untyped-decorator]
    name="workers.tasks.deliver_notification",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def deliver_notification(delivery_id: int, claim: str, settings: Settings | None = None) -> str:
    """One delivery: the messages of releases before `deliver_notifications`, still in a
    queue when the workers were upgraded, are attempted as before."""
    [outcome] = deliver_notifications([[delivery_id, claim]], settings)
    return str(outcome)
