"""Deliveries handed out and attempted in batches (issue 12): one message and two transactions
per batch of one subscription's deliveries, each delivery still judged, sent and recorded on
its own terms."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.store.db import transaction
from service.store.resources import utcnow
from service.subscriptions import deliveries
from service.subscriptions.deliveries import Claimed
from service.subscriptions.models import Delivery, DeliveryAttempt
from service.subscriptions.relay import DELIVERY_BATCH, DeliveryRelay, batches
from service.subscriptions.settings import DeliverySettings
from tests.api.apps import session_factory_of
from tests.api.subscriptions.receiver import Receiver
from tests.builders.subscriptions import alert_request, subscription
from workers.delivery import attempt as attempt_module
from workers.delivery.attempt import attempt_many


@pytest.fixture
def ok() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def down() -> Iterator[Receiver]:
    r = Receiver(fail_first=1000).start()
    yield r
    r.stop()


def _cr(cid: str) -> dict[str, Any]:
    return alert_request(cid, "batches")


def _subscribe(client: TestClient, headers: dict[str, str], receiver: Receiver) -> str:
    created = client.post("/fhir/Subscription", json=subscription(receiver.url), headers=headers)
    assert created.status_code == 201
    return str(created.json()["id"])


def _claim(client: TestClient) -> list[Claimed]:
    with transaction(session_factory_of(client)) as session:
        return deliveries.claim_due(session, now=utcnow(), lease=60)


def _rows(client: TestClient) -> dict[int, Delivery]:
    with transaction(session_factory_of(client)) as session:
        return {d.pk: d for d in session.scalars(select(Delivery))}


def test_a_batch_judges_sends_and_records_each_delivery_on_its_own(
    still: TestClient, headers: dict[str, str], ok: Receiver, down: Receiver
) -> None:
    """One batch: a delivery that succeeds, one whose receiver fails (retry), one with a stale
    claim and one listed twice (both skipped: nothing is sent twice)."""
    sid_ok = _subscribe(still, headers, ok)
    _subscribe(still, headers, down)
    still.put("/fhir/CommunicationRequest/b1", json=_cr("b1"), headers=headers)
    still.put("/fhir/CommunicationRequest/b2", json=_cr("b2"), headers=headers)
    claimed = _claim(still)
    assert len(claimed) == 4  # 2 subscriptions x 2 alerts
    to_ok = [c for c in claimed if c.subscription_id == sid_ok]
    to_down = [c for c in claimed if c.subscription_id != sid_ok]
    items = [
        (to_ok[0].pk, to_ok[0].claim),
        (to_down[0].pk, to_down[0].claim),
        (to_ok[1].pk, "not-the-claim"),
        (to_ok[0].pk, to_ok[0].claim),
    ]
    started = utcnow()
    outcomes = attempt_many(session_factory_of(still), items, settings=DeliverySettings())
    assert outcomes == ["success", "retry", "skipped", "skipped"]
    assert len(ok.accepted()) == 1 and len(down.requests) == 1
    rows = _rows(still)
    sent, failed, stale = rows[to_ok[0].pk], rows[to_down[0].pk], rows[to_ok[1].pk]
    assert (sent.status, sent.attempts, sent.claim, sent.locked_until) == ("success", 1, None, None)
    assert sent.delivered_at is not None and sent.last_error is None
    assert (failed.status, failed.attempts, failed.claim) == ("pending", 1, None)
    assert failed.last_error == "HTTP 503" and failed.next_attempt_at > started
    # the stale claim is untouched: still claimed under its own token, nothing attempted
    assert stale.claim == to_ok[1].claim and stale.attempts == 0
    with transaction(session_factory_of(still)) as session:
        tries = {
            (a.delivery_pk, a.number, a.outcome) for a in session.scalars(select(DeliveryAttempt))
        }
    assert tries == {(sent.pk, 1, "success"), (failed.pk, 1, "failed")}
    # the retry is attempt 2 next time, in a batch of its own
    with transaction(session_factory_of(still)) as session:
        [again] = deliveries.claim_due(
            session, now=failed.next_attempt_at + timedelta(seconds=1), lease=60
        )
    assert attempt_many(
        session_factory_of(still), [(again.pk, again.claim)], settings=DeliverySettings()
    ) == ["retry"]
    with transaction(session_factory_of(still)) as session:
        numbers = session.scalars(
            select(DeliveryAttempt.number).where(DeliveryAttempt.delivery_pk == failed.pk)
        ).all()
    assert sorted(numbers) == [1, 2]


def test_the_in_flight_lease_covers_every_attempt_of_the_batch(
    still: TestClient, headers: dict[str, str], ok: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The requests of a batch go out one after the other: its lease is one attempt's plus a
    timeout for each further one, so a slow receiver cannot make the relay hand the tail of
    the batch out again while it is still being sent."""
    _subscribe(still, headers, ok)
    for i in range(3):
        still.put(f"/fhir/CommunicationRequest/l{i}", json=_cr(f"l{i}"), headers=headers)
    claimed = _claim(still)
    leases: list[Any] = []
    real_post = attempt_module.post

    def post(*args: Any, **kwargs: Any) -> Any:  # a probe: the real request still goes out
        if not leases:
            leases.extend(r.locked_until for r in _rows(still).values())
        return real_post(*args, **kwargs)

    monkeypatch.setattr(attempt_module, "post", post)
    s = DeliverySettings()
    before = utcnow()
    outcomes = attempt_many(
        session_factory_of(still), [(c.pk, c.claim) for c in claimed], settings=s
    )
    assert outcomes == ["success"] * 3
    expected = timedelta(seconds=s.in_flight_seconds + 2 * s.timeout_seconds)
    assert len(leases) == 3
    for lease in leases:
        assert before + expected <= lease <= utcnow() + expected


def test_batches_are_per_subscription_in_runs_of_delivery_batch() -> None:
    claimed = [Claimed(pk, f"c{pk}", "a" if pk % 4 else "b") for pk in range(1, 31)]
    got = batches(claimed)
    assert [[c.pk for c in b] for b in got] == [
        [1, 2, 3, 5, 6, 7, 9, 10, 11, 13],
        [14, 15, 17, 18, 19, 21, 22, 23, 25, 26],
        [27, 29, 30],
        [4, 8, 12, 16, 20, 24, 28],
    ]
    assert all(len(b) <= DELIVERY_BATCH for b in got)


def test_the_relay_hands_a_claim_out_as_one_batch_per_subscription(
    still: TestClient, headers: dict[str, str], ok: Receiver, down: Receiver
) -> None:
    first = _subscribe(still, headers, ok)
    second = _subscribe(still, headers, down)
    for i in range(12):
        still.put(f"/fhir/CommunicationRequest/r{i}", json=_cr(f"r{i}"), headers=headers)
    handed: list[list[Claimed]] = []

    def dispatch(items: Sequence[Claimed]) -> None:
        handed.append(list(items))

    assert DeliveryRelay(session_factory_of(still), dispatch).run_once() == 24
    assert [(b[0].subscription_id, len(b)) for b in handed] == [
        (first, 10),
        (first, 2),
        (second, 10),
        (second, 2),
    ] or [(b[0].subscription_id, len(b)) for b in handed] == [
        (second, 10),
        (second, 2),
        (first, 10),
        (first, 2),
    ]
    assert all(len({c.subscription_id for c in b}) == 1 for b in handed)
    assert sorted(c.pk for b in handed for c in b) == sorted(_rows(still))
