"""The evaluation's writes in Core statements (issue 12): `episodes.save_state` and
`deliveries.record` write the same rows the ORM did, on SQLite and PostgreSQL alike.

`save_state` is an upsert: the unique `open_key` must still refuse a second open episode for a
patient inside the statement, `created_at` must survive an update, and an ORM `Episode` the
session already holds must not go stale.
"""

from __future__ import annotations

import time

import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from service.store import episodes as episode_store
from service.store.db import transaction
from service.store.models import Episode
from service.store.resources import utcnow
from service.subscriptions import deliveries
from service.subscriptions.models import PENDING, Delivery


def _row(factory: sessionmaker[Session], episode_id: str) -> Episode:
    with transaction(factory) as session:
        row = session.get(Episode, episode_id)
        assert row is not None
        session.expunge(row)
        return row


def test_save_state_inserts_then_updates_keeping_created_at(
    factory: sessionmaker[Session],
) -> None:
    with transaction(factory) as session:
        episode_store.save_state(
            session, episode_id="e1", patient_id="p1", status="open", state={"v": 1}
        )
    first = _row(factory, "e1")
    assert (first.patient_id, first.open_key, first.status) == ("p1", "p1", "open")
    assert orjson.loads(first.state) == {"v": 1}
    assert first.created_at == first.updated_at

    time.sleep(0.01)
    with transaction(factory) as session:
        episode_store.save_state(
            session, episode_id="e1", patient_id="p1", status="closed", state={"v": 2}
        )
    second = _row(factory, "e1")
    assert (second.patient_id, second.open_key, second.status) == ("p1", None, "closed")
    assert orjson.loads(second.state) == {"v": 2}
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at
    with transaction(factory) as session:
        assert episode_store.load_states(session, ["p1"]) == ({}, {"p1": [{"v": 2}]})


@pytest.mark.parametrize("second", ["new episode", "reopened closed episode"])
def test_a_second_open_episode_is_refused_inside_the_statement(
    factory: sessionmaker[Session], second: str
) -> None:
    with transaction(factory) as session:
        episode_store.save_state(session, episode_id="o1", patient_id="p2", status="open", state={})
        episode_store.save_state(
            session, episode_id="c1", patient_id="p2", status="closed", state={}
        )
    other = "o2" if second == "new episode" else "c1"
    with pytest.raises(IntegrityError), transaction(factory) as session:
        episode_store.save_state(
            session, episode_id=other, patient_id="p2", status="open", state={"x": 1}
        )
    with transaction(factory) as session:  # rolled back: nothing changed
        rows = session.execute(select(Episode.id, Episode.open_key).order_by(Episode.id)).all()
    assert [tuple(r) for r in rows] == [("c1", None), ("o1", "p2")]


def test_an_episode_object_already_in_the_session_is_not_stale(
    factory: sessionmaker[Session],
) -> None:
    with transaction(factory) as session:
        episode_store.save_state(
            session, episode_id="s1", patient_id="p3", status="open", state={"v": 1}
        )
    with transaction(factory) as session:
        assert episode_store.load_open(session, "p3") == {"v": 1}  # loads the ORM object
        held = session.get(Episode, "s1")
        assert held is not None
        episode_store.save_state(
            session, episode_id="s1", patient_id="p3", status="open", state={"v": 2}
        )
        assert orjson.loads(held.state) == {"v": 2}
        assert episode_store.load_open(session, "p3") == {"v": 2}
        episode_store.save_state(
            session, episode_id="s1", patient_id="p3", status="closed", state={"v": 3}
        )
        assert held.open_key is None
        assert episode_store.load_open(session, "p3") is None


def test_record_writes_a_pending_delivery_visible_in_the_same_transaction(
    factory: sessionmaker[Session],
) -> None:
    now = utcnow()
    with transaction(factory) as session:
        deliveries.record(
            session,
            subscription_id="sub1",
            resource_type="CommunicationRequest",
            resource_id="cr1",
            version_id=3,
            now=now,
        )
        seen = session.scalars(select(Delivery).where(Delivery.subscription_id == "sub1")).all()
        assert [(d.resource_id, d.version_id) for d in seen] == [("cr1", 3)]
        deliveries.record(
            session,
            subscription_id="sub1",
            resource_type="Subscription",
            resource_id="sub1",
            version_id=1,
            now=now,
            kind="handshake",
            event_number=0,
        )
    with transaction(factory) as session:
        rows = session.scalars(select(Delivery).order_by(Delivery.pk)).all()
        got = [
            (
                r.subscription_id,
                r.resource_type,
                r.resource_id,
                r.version_id,
                r.status,
                r.attempts,
                r.created_at,
                r.next_attempt_at,
                r.locked_until,
                r.claim,
                r.delivered_at,
                r.last_error,
                r.kind,
                r.event_number,
            )
            for r in rows
        ]
        uids = {r.uid for r in rows}
    empty = (None, None, None, None)  # locked_until, claim, delivered_at, last_error
    assert got == [
        ("sub1", "CommunicationRequest", "cr1", 3, PENDING, 0, now, now, *empty, None, None),
        ("sub1", "Subscription", "sub1", 1, PENDING, 0, now, now, *empty, "handshake", 0),
    ]
    assert len(uids) == 2 and all(len(u) == 36 for u in uids)
