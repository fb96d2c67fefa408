"""Subscriptions are read once per transaction for all its alert writes (issue 12), and a
Subscription written or deleted in that transaction is seen by the next alert write."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.api.app import create_app
from service.config import Settings
from service.store import resources as store
from service.store.db import session_factory, transaction
from service.subscriptions.models import Delivery
from tests.builders.subscriptions import subscription


def _request(rid: str) -> dict[str, Any]:
    return {
        "resourceType": "CommunicationRequest",
        "status": "active",
        "priority": "urgent",
        "subject": {"reference": "Patient/cache-p"},
    }


def _factory(settings: Settings) -> sessionmaker[Session]:
    local = settings.model_copy(update={"subscription_allowed_hosts": "127.0.0.1"})
    create_app(local, start_relay=False)  # installs the write hook with these settings
    return session_factory(local.resolved_database_url)


def _deliveries(factory: sessionmaker[Session]) -> list[tuple[str, str]]:
    with transaction(factory) as session:
        rows = session.execute(select(Delivery.subscription_id, Delivery.resource_id))
        return sorted((s, r) for s, r in rows)


def test_alert_writes_see_subscriptions_written_and_deleted_in_the_same_transaction(
    settings: Settings,
) -> None:
    factory = _factory(settings)
    hook = subscription("http://127.0.0.1:9/hook", "CommunicationRequest?status=active")
    with transaction(factory) as session:
        store.save(
            session,
            resource_type="CommunicationRequest",
            resource_id="cr-0",
            resource=_request("cr-0"),
        )  # no subscription yet: the (empty) list is cached
        store.save(session, resource_type="Subscription", resource_id="sub-a", resource=hook)
        store.save(
            session,
            resource_type="CommunicationRequest",
            resource_id="cr-1",
            resource=_request("cr-1"),
        )
        store.remove(session, resource_type="Subscription", resource_id="sub-a")
        store.save(
            session,
            resource_type="CommunicationRequest",
            resource_id="cr-2",
            resource=_request("cr-2"),
        )
    assert _deliveries(factory) == [("sub-a", "cr-1")]


def test_many_alert_writes_in_one_transaction_read_the_subscriptions_once(
    settings: Settings,
) -> None:
    factory = _factory(settings)
    hook = subscription("http://127.0.0.1:9/hook", "CommunicationRequest?status=active")
    with transaction(factory) as session:
        store.save(session, resource_type="Subscription", resource_id="sub-b", resource=hook)
    statements: list[str] = []
    with transaction(factory) as session:
        from sqlalchemy import event

        def count(_conn: Any, _cur: Any, statement: str, *_a: Any) -> None:
            if "FROM resources" in statement and "Subscription" in str(_a[0]):
                statements.append(statement)

        engine = session.get_bind()
        event.listen(engine, "before_cursor_execute", count)
        try:
            for i in range(10):
                store.save(
                    session,
                    resource_type="CommunicationRequest",
                    resource_id=f"many-{i}",
                    resource=_request(f"many-{i}"),
                )
        finally:
            event.remove(engine, "before_cursor_execute", count)
    assert len(statements) == 1
    assert len(_deliveries(factory)) == 10
