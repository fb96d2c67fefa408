"""Recording and handing out deliveries on the real database, without the relay thread: the
same-transaction guarantee, duplicate hand-offs, lost hand-offs and broker failures."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from service.store.db import transaction
from service.store.resources import utcnow
from service.subscriptions import deliveries
from service.subscriptions.deliveries import Claimed
from service.subscriptions.models import Delivery
from service.subscriptions.relay import DeliveryRelay
from service.subscriptions.settings import DeliverySettings
from tests.api.apps import session_factory_of
from tests.api.subscriptions.receiver import Receiver
from tests.builders.subscriptions import alert_request, subscription
from workers.delivery.attempt import attempt, attempt_many


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def _cr(cid: str, status: str = "active", priority: str = "stat") -> dict[str, Any]:
    return alert_request(cid, "claims", status=status, priority=priority)


def _count(client: TestClient) -> int:
    with transaction(session_factory_of(client)) as session:
        return session.scalar(select(func.count()).select_from(Delivery)) or 0


def _claim(client: TestClient, *, at: Any = None) -> list[deliveries.Claimed]:
    with transaction(session_factory_of(client)) as session:
        return deliveries.claim_due(session, now=at or utcnow(), lease=60)


def test_a_write_that_rolls_back_notifies_nobody(
    still: TestClient, headers: dict[str, str], receiver: Receiver
) -> None:
    still.post("/fhir/Subscription", json=subscription(receiver.url), headers=headers)
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": _cr("tx1"),
                "request": {"method": "PUT", "url": "CommunicationRequest/tx1"},
            },
            {
                "resource": {"resourceType": "Observation", "status": "bogus"},
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    assert still.post("/fhir", json=bundle, headers=headers).status_code == 422
    assert _count(still) == 0
    assert (
        still.put("/fhir/CommunicationRequest/tx1", json=_cr("tx1"), headers=headers).status_code
        == 201
    )
    assert _count(still) == 1
    # non-matching changes record nothing
    still.put(
        "/fhir/CommunicationRequest/tx2", json=_cr("tx2", priority="routine"), headers=headers
    )
    assert _count(still) == 1


def test_one_row_per_subscription_and_version(
    still: TestClient, headers: dict[str, str], receiver: Receiver
) -> None:
    sid = still.post("/fhir/Subscription", json=subscription(receiver.url), headers=headers).json()[
        "id"
    ]
    still.put("/fhir/CommunicationRequest/u1", json=_cr("u1"), headers=headers)
    with pytest.raises(IntegrityError), transaction(session_factory_of(still)) as session:
        deliveries.record(
            session,
            subscription_id=sid,
            resource_type="CommunicationRequest",
            resource_id="u1",
            version_id=1,
            now=utcnow(),
        )
        session.flush()


def test_a_duplicate_hand_off_is_attempted_once(
    still: TestClient, headers: dict[str, str], receiver: Receiver
) -> None:
    still.post("/fhir/Subscription", json=subscription(receiver.url), headers=headers)
    still.put("/fhir/CommunicationRequest/d1", json=_cr("d1"), headers=headers)
    [claimed] = _claim(still)
    assert _claim(still) == []  # handed out: not handed out twice
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        barrier.wait()
        outcomes.append(
            attempt(
                session_factory_of(still), claimed.pk, claimed.claim, settings=DeliverySettings()
            )
        )

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["skipped", "skipped", "skipped", "success"]
    assert len(receiver.accepted()) == 1


def test_a_lost_hand_off_is_handed_out_again_after_its_lease(
    still: TestClient, headers: dict[str, str], receiver: Receiver
) -> None:
    still.post("/fhir/Subscription", json=subscription(receiver.url), headers=headers)
    still.put("/fhir/CommunicationRequest/l1", json=_cr("l1"), headers=headers)
    [lost] = _claim(still)  # the message never reaches a worker
    assert _claim(still, at=utcnow() + timedelta(seconds=30)) == []
    [again] = _claim(still, at=utcnow() + timedelta(seconds=61))
    assert again.pk == lost.pk and again.claim != lost.claim
    s = DeliverySettings()
    assert attempt(session_factory_of(still), lost.pk, lost.claim, settings=s) == "skipped"
    assert attempt(session_factory_of(still), again.pk, again.claim, settings=s) == "success"
    assert attempt(session_factory_of(still), again.pk, again.claim, settings=s) == "skipped"
    assert len(receiver.accepted()) == 1


def test_a_failed_hand_off_releases_the_delivery(
    still: TestClient, headers: dict[str, str], receiver: Receiver
) -> None:
    still.post("/fhir/Subscription", json=subscription(receiver.url), headers=headers)
    still.put("/fhir/CommunicationRequest/b1", json=_cr("b1"), headers=headers)

    def broker_down(_items: Sequence[Claimed]) -> None:
        raise ConnectionError("broker unreachable")

    assert DeliveryRelay(session_factory_of(still), broker_down).run_once() == 0
    with transaction(session_factory_of(still)) as session:
        [row] = session.scalars(select(Delivery)).all()
        assert row.status == "pending" and row.claim is None and row.locked_until is None
    outcomes: list[str] = []

    def in_process(items: Sequence[Claimed]) -> None:
        outcomes.extend(
            attempt_many(
                session_factory_of(still),
                [(i.pk, i.claim) for i in items],
                settings=DeliverySettings(),
            )
        )

    assert DeliveryRelay(session_factory_of(still), in_process).run_once() == 1
    assert outcomes == ["success"]
    assert len(receiver.accepted()) == 1


def test_ended_subscriptions_collect_nothing_and_channel_headers_are_sent(
    still: TestClient, headers: dict[str, str], receiver: Receiver
) -> None:
    ended = subscription(receiver.url, end="2020-01-01T00:00:00Z")
    still.post("/fhir/Subscription", json=ended, headers=headers)
    live = subscription(receiver.url)
    live["channel"]["header"] = ["Authorization: Bearer receiver-token"]
    sid = still.post("/fhir/Subscription", json=live, headers=headers).json()["id"]
    still.put("/fhir/CommunicationRequest/h1", json=_cr("h1"), headers=headers)
    [claimed] = _claim(still)
    assert attempt(
        session_factory_of(still), claimed.pk, claimed.claim, settings=DeliverySettings()
    ) == ("success")
    [req] = receiver.accepted()
    assert req.headers["authorization"] == "Bearer receiver-token"
    assert req.headers["x-fhir-alerts-subscription"] == f"Subscription/{sid}"
    assert req.headers["user-agent"].startswith("fhir-alerts/")
