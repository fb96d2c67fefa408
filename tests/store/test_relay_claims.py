"""Several outbox relays (one per API process) on one database: every outbox row is handed out
exactly once, the relays share the work, and a failed or lost hand-off is handed out again.

Runs on SQLite by default and on the real PostgreSQL in the server run (ALERTS_TEST_SERVERS=1),
where the claim is `FOR UPDATE SKIP LOCKED`.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

from sqlalchemy import select

from service.config import Settings
from service.relay import Relay
from service.store import outbox
from service.store.db import session_factory, transaction
from service.store.migrate import upgrade
from service.store.models import Outbox
from service.store.resources import utcnow


class Recorder:
    """An evaluation dispatcher that records hand-offs (as a broker would receive them)."""

    def __init__(self, delay: float = 0.0, fail_for: frozenset[str] = frozenset()) -> None:
        self.handed: list[tuple[str, int]] = []
        self._delay = delay
        self._fail_for = fail_for
        self._lock = threading.Lock()

    def __call__(self, patient_id: str, upto: int) -> None:
        if patient_id in self._fail_for:
            raise ConnectionError("broker unreachable")
        time.sleep(self._delay)  # a publish takes ~2 ms on a real broker
        with self._lock:
            self.handed.append((patient_id, upto))


def _factory(settings: Settings):  # type: ignore[no-untyped-def]
    url = settings.resolved_database_url
    settings.ensure_data_dir()
    upgrade(url)
    return session_factory(url)


def _drain(relay: Relay) -> None:
    idle = 0
    while idle < 3:
        idle = idle + 1 if relay.run_once() == 0 else 0


def test_two_relays_hand_out_each_write_once_and_share_the_work(settings: Settings) -> None:
    """Before the claim, two API processes read the same due rows and both dispatched them
    (765 and 782 tasks for 400 patients in a trial)."""
    factory = _factory(settings)
    patients = [f"claim-{i:03d}" for i in range(200)]
    with transaction(factory) as session:
        outbox.enqueue(session, patients)
    a, b = Recorder(delay=0.002), Recorder(delay=0.002)
    relays = [Relay(factory, a, batch=20), Relay(factory, b, batch=20)]
    threads = [threading.Thread(target=_drain, args=(r,)) for r in relays]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    counts = Counter(p for p, _ in a.handed + b.handed)
    assert sorted(counts) == patients
    assert set(counts.values()) == {1}, counts.most_common(3)
    assert a.handed and b.handed  # both relays did part of the work
    with transaction(factory) as session:
        assert all(r.dispatched_at is not None for r in session.scalars(select(Outbox)))


def test_a_failed_hand_off_releases_the_batch_for_the_next_pass(settings: Settings) -> None:
    factory = _factory(settings)
    for pid in ("ok-1", "fail-1", "ok-2"):  # one write each, in this order
        with transaction(factory) as session:
            outbox.enqueue(session, [pid])
    broken = Recorder(fail_for=frozenset({"fail-1"}))
    assert Relay(factory, broken).run_once() == 1
    assert [p for p, _ in broken.handed] == ["ok-1"]
    working = Recorder()
    assert Relay(factory, working).run_once() == 2
    assert [p for p, _ in working.handed] == ["fail-1", "ok-2"]
    assert Relay(factory, Recorder()).run_once() == 0  # nothing left to hand out


def test_rows_of_one_patient_are_coalesced_into_one_hand_off(settings: Settings) -> None:
    factory = _factory(settings)
    for _ in range(3):
        with transaction(factory) as session:
            outbox.enqueue(session, ["many"])
    rec = Recorder()
    Relay(factory, rec).run_once()
    with transaction(factory) as session:
        top = max(r.pk for r in session.scalars(select(Outbox)))
    assert rec.handed == [("many", top)]


class ResettingBroker(Recorder):
    """A dispatcher whose broker restarted empty once (its epoch key was gone)."""

    def __init__(self) -> None:
        super().__init__()
        self.resets = 1

    def broker_reset(self) -> bool:
        if self.resets:
            self.resets -= 1
            return True
        return False


def test_rows_dispatched_before_the_broker_lost_its_queues_are_handed_out_again(
    settings: Settings,
) -> None:
    factory = _factory(settings)
    with transaction(factory) as session:
        outbox.enqueue(session, ["lost-1"])
    first = Recorder()
    Relay(factory, first).run_once()
    assert [p for p, _ in first.handed] == ["lost-1"]
    # Without a broker reset a dispatched row waits for the stale timeout (300 s) ...
    assert Relay(factory, Recorder()).run_once() == 0
    # ... with one, it is handed out again at once, and only once.
    broker = ResettingBroker()
    relay = Relay(factory, broker, epoch_check_every=0)
    assert relay.run_once() == 1
    assert relay.run_once() == 0
    assert [p for p, _ in broker.handed] == ["lost-1"]


def test_a_write_committed_after_the_hand_off_is_not_marked_done_unseen(
    settings: Settings,
) -> None:
    """Outbox ids are taken at insert, rows appear at commit: a write can hold a lower id than
    the hand-off's `upto` yet commit after it (and after the evaluation read the records). Its
    row used to be deleted with the covered ones, so that write was never evaluated."""
    factory = _factory(settings)
    with transaction(factory) as session:
        outbox.enqueue(session, ["late"])
    rec = Recorder()
    Relay(factory, rec).run_once()
    [(_, upto)] = rec.handed
    with transaction(factory) as session:  # the late writer's row: lower id, never handed out
        session.add(Outbox(pk=upto - 1 if upto > 1 else 0, patient_id="late", created_at=utcnow()))
    with transaction(factory) as session:
        outbox.complete_many(session, {"late": upto})
    with transaction(factory) as session:
        left = [(r.pk, r.dispatched_at) for r in session.scalars(select(Outbox))]
    assert left == [(upto - 1 if upto > 1 else 0, None)]
    again = Recorder()
    Relay(factory, again).run_once()
    assert [p for p, _ in again.handed] == ["late"]


class BatchRecorder(Recorder):
    """A dispatcher that also takes batches (as the broker and in-process dispatchers do)."""

    def __init__(self, fail_batch: int | None = None) -> None:
        super().__init__()
        self.batches: list[list[tuple[str, int]]] = []
        self._fail_batch = fail_batch

    def evaluate_many(self, items: list[tuple[str, int]]) -> None:
        if self._fail_batch is not None and len(self.batches) == self._fail_batch:
            raise ConnectionError("broker unreachable")
        self.batches.append(list(items))


def test_a_busy_relay_hands_out_batches_and_releases_unsent_ones(settings: Settings) -> None:
    """Issue 12: a claim of many patients goes out as batched evaluations (one transaction each
    on the worker), at most `EVALUATION_BATCH` per message; a failed publish gives back that
    batch and the rest, which the next pass hands out again."""
    from service.relay import EVALUATION_BATCH

    factory = _factory(settings)
    patients = [f"batch-{i:03d}" for i in range(60)]
    with transaction(factory) as session:
        outbox.enqueue(session, patients)
    failing = BatchRecorder(fail_batch=1)
    assert Relay(factory, failing).run_once() == EVALUATION_BATCH
    assert [len(b) for b in failing.batches] == [EVALUATION_BATCH]
    recorder = BatchRecorder()
    _drain(Relay(factory, recorder))
    assert all(len(b) <= EVALUATION_BATCH for b in recorder.batches)
    handed = [p for b in failing.batches + recorder.batches for p, _ in b]
    assert sorted(handed) == patients  # each exactly once
    assert recorder.handed == []  # nothing went out one by one


def test_a_full_claim_goes_straight_on_and_a_partial_one_waits_for_a_commit(
    settings: Settings,
) -> None:
    """The relay skips the empty claim after a partial hand-off (it waits for the next
    commit's wake-up), but never leaves rows behind a full claim until its poll interval."""
    factory = _factory(settings)
    with transaction(factory) as session:
        outbox.enqueue(session, [f"full-{i:02d}" for i in range(30)])
    recorder = Recorder()
    relay = Relay(factory, recorder, interval=30.0, batch=10)
    relay.start()
    try:
        deadline = time.monotonic() + 5
        while len(recorder.handed) < 30 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(recorder.handed) == 30  # three full claims, no 30 s wait between them
        with transaction(factory) as session:
            outbox.enqueue(session, ["late"])  # its commit wakes the waiting relay
        deadline = time.monotonic() + 5
        while len(recorder.handed) < 31 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert recorder.handed[-1][0] == "late"
    finally:
        relay.stop()
