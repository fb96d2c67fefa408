"""Wake-ups (service/store/wakeups.py, pg_listen.py): a commit that produced work wakes the
relays at once, a rollback wakes nobody; on PostgreSQL the wake-up also crosses processes as a
NOTIFY that the listener thread turns into a local one, and the listener survives losing its
connection. Real databases: SQLite by default, PostgreSQL with ALERTS_TEST_SERVERS=1."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.polling import PollingThread
from service.store import outbox, pg_listen, wakeups
from service.store.db import transaction


class Waiter:
    """Counts wake-ups on one channel of the test's database."""

    def __init__(self, factory: sessionmaker[Session], channel: str) -> None:
        self.channel = wakeups.Channel(wakeups.factory_key(factory), channel)
        self.woken = threading.Event()
        self.count = 0

    def __call__(self) -> None:
        self.count += 1
        self.woken.set()


@pytest.fixture
def outbox_waiter(factory: sessionmaker[Session]) -> Iterator[Waiter]:
    waiter = Waiter(factory, wakeups.OUTBOX)
    wakeups.add_waiter(waiter.channel, waiter)
    yield waiter
    wakeups.remove_waiter(waiter.channel, waiter)


def test_a_commit_wakes_its_channel_once_and_only_after_the_commit(
    factory: sessionmaker[Session], outbox_waiter: Waiter
) -> None:
    deliveries = Waiter(factory, wakeups.DELIVERIES)
    wakeups.add_waiter(deliveries.channel, deliveries)
    try:
        with transaction(factory) as session:
            outbox.enqueue(session, ["wake-1"])
            outbox.enqueue(session, ["wake-2"])  # two signals, one transaction: one wake-up
            assert outbox_waiter.count == 0  # not before the commit: nothing is visible yet
        assert outbox_waiter.count == 1
        assert deliveries.count == 0  # another channel
    finally:
        wakeups.remove_waiter(deliveries.channel, deliveries)


def test_a_rollback_wakes_nobody_and_leaves_nothing_for_the_next_transaction(
    factory: sessionmaker[Session], outbox_waiter: Waiter
) -> None:
    with pytest.raises(RuntimeError), transaction(factory) as session:
        outbox.enqueue(session, ["wake-3"])
        raise RuntimeError("the write failed")
    assert outbox_waiter.count == 0
    # The same session's next transaction commits without work: still nobody to wake.
    with factory() as session:
        with pytest.raises(RuntimeError), session.begin():
            outbox.enqueue(session, ["wake-4"])
            raise RuntimeError("again")
        with session.begin():
            session.execute(text("SELECT 1"))
    assert outbox_waiter.count == 0


def test_a_released_savepoint_waits_for_the_outer_commit(
    factory: sessionmaker[Session], outbox_waiter: Waiter
) -> None:
    """Batch Bundles run each entry in a savepoint: its release is not a commit."""
    with transaction(factory) as session:
        with session.begin_nested():
            outbox.enqueue(session, ["wake-5"])
        assert outbox_waiter.count == 0
    assert outbox_waiter.count == 1


def test_another_databases_waiters_are_not_woken(
    factory: sessionmaker[Session], outbox_waiter: Waiter
) -> None:
    """Many apps share a test process (and several services a host): each wakes its own."""
    elsewhere = Waiter(factory, wakeups.OUTBOX)
    channel = wakeups.Channel("sqlite:////nowhere/else.db", wakeups.OUTBOX)
    wakeups.add_waiter(channel, elsewhere)
    try:
        with transaction(factory) as session:
            outbox.enqueue(session, ["wake-6"])
        assert outbox_waiter.count == 1
        assert elsewhere.count == 0
    finally:
        wakeups.remove_waiter(channel, elsewhere)


class Passes(PollingThread):
    """A polling thread that records when its passes ran."""

    def __init__(self, factory: sessionmaker[Session], interval: float) -> None:
        super().__init__(
            name="test-passes",
            interval=interval,
            wake_on=wakeups.Channel(wakeups.factory_key(factory), wakeups.OUTBOX),
        )
        self.passes: list[float] = []

    def run_once(self) -> int:
        self.passes.append(time.monotonic())
        return 0


def test_a_polling_thread_runs_a_pass_at_the_commit_not_at_its_interval(
    factory: sessionmaker[Session],
) -> None:
    thread = Passes(factory, interval=30.0)
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while not thread.passes and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(thread.passes) == 1  # the first pass, then a 30 s wait
        with transaction(factory) as session:
            outbox.enqueue(session, ["wake-7"])
        committed = time.monotonic()
        while len(thread.passes) < 2 and time.monotonic() < committed + 5:
            time.sleep(0.005)
        assert len(thread.passes) == 2
        assert thread.passes[1] - committed < 1.0
    finally:
        thread.stop()
    # Stopped: no longer a waiter, so later commits wake nobody.
    with transaction(factory) as session:
        outbox.enqueue(session, ["wake-8"])
    assert len(thread.passes) == 2


class Busy(PollingThread):
    """Hands out one item per pass (so it waits for a wake-up after each), with a pass gap."""

    def __init__(self, min_gap: float) -> None:
        super().__init__(name="test-busy", interval=30.0, min_gap=min_gap)
        self.passes: list[float] = []

    def run_once(self) -> int:
        self.passes.append(time.monotonic())
        return 1

    def saturated(self, handed: int) -> bool:
        return False


def _wait_for(thread: Busy, count: int) -> None:
    deadline = time.monotonic() + 5
    while len(thread.passes) < count and time.monotonic() < deadline:
        time.sleep(0.001)
    assert len(thread.passes) >= count


def test_under_a_stream_of_wake_ups_passes_start_min_gap_apart() -> None:
    """A wake-up per commit at hundreds a second must not mean a claim per commit: passes
    are spaced by `min_gap`, so each takes the commits of the gap together."""
    thread = Busy(min_gap=0.05)
    thread.start()
    try:
        _wait_for(thread, 1)
        end = time.monotonic() + 0.6
        while time.monotonic() < end:  # ~600 wake-ups in 0.6 s
            thread.nudge()
            time.sleep(0.001)
        passes = list(thread.passes)
    finally:
        thread.stop()
    gaps = [b - a for a, b in itertools.pairwise(passes)]
    assert gaps and min(gaps) >= 0.045  # monotonic clock, a little scheduler slack
    assert len(passes) <= 1 + 0.6 / 0.05 + 1


def test_a_wake_up_after_a_quiet_spell_is_served_at_once() -> None:
    thread = Busy(min_gap=0.5)
    thread.start()
    try:
        _wait_for(thread, 1)
        time.sleep(0.6)  # quieter than the gap
        woken = time.monotonic()
        thread.nudge()
        _wait_for(thread, 2)
        assert thread.passes[1] - woken < 0.1
    finally:
        thread.stop()


# --- PostgreSQL: NOTIFY and the listener thread (ALERTS_TEST_SERVERS=1) ----------------------


def _pg(settings: Settings) -> str:
    url = settings.resolved_database_url
    if not pg_listen.is_postgres(url):
        pytest.skip("PostgreSQL only (ALERTS_TEST_SERVERS=1)")
    return url


def _notifies(conn: psycopg.Connection, seconds: float) -> list[str]:
    return [n.channel for n in conn.notifies(timeout=seconds)]


@pytest.mark.server
def test_signal_notifies_other_connections_on_commit_only(
    settings: Settings, factory: sessionmaker[Session]
) -> None:
    url = _pg(settings)
    with psycopg.connect(pg_listen.conninfo(url), autocommit=True) as conn:
        conn.execute("LISTEN fhir_alerts_outbox")
        conn.execute("LISTEN fhir_alerts_deliveries")
        with transaction(factory) as session:
            outbox.enqueue(session, ["notify-1"])
            outbox.enqueue(session, ["notify-2"])
            session.flush()
            assert _notifies(conn, 0.3) == []  # NOTIFY is delivered at commit
        assert _notifies(conn, 2) == ["fhir_alerts_outbox"]  # once per transaction
        with pytest.raises(RuntimeError), transaction(factory) as session:
            outbox.enqueue(session, ["notify-3"])
            raise RuntimeError("rolled back")
        assert _notifies(conn, 0.5) == []


@pytest.mark.server
def test_work_handed_out_locally_wakes_this_process_and_notifies_no_other(
    settings: Settings, factory: sessionmaker[Session]
) -> None:
    """A worker sends the notifications its evaluation records itself: other processes'
    delivery relays are not woken to race it for the same rows (one empty claim each per
    evaluation under load); the outbox channel of the same transaction still notifies, and
    the next transaction notifies again."""
    url = _pg(settings)
    local = Waiter(factory, wakeups.DELIVERIES)
    wakeups.add_waiter(local.channel, local)
    try:
        with psycopg.connect(pg_listen.conninfo(url), autocommit=True) as conn:
            conn.execute("LISTEN fhir_alerts_outbox")
            conn.execute("LISTEN fhir_alerts_deliveries")
            with transaction(factory) as session:
                wakeups.local_only(session, wakeups.DELIVERIES)
                wakeups.signal(session, wakeups.DELIVERIES)
                outbox.enqueue(session, ["local-1"])
            assert local.woken.wait(2)
            assert _notifies(conn, 1) == ["fhir_alerts_outbox"]
            with transaction(factory) as session:  # the marker ends with its transaction
                wakeups.signal(session, wakeups.DELIVERIES)
            assert _notifies(conn, 2) == ["fhir_alerts_deliveries"]
    finally:
        wakeups.remove_waiter(local.channel, local)


def _notify_from_elsewhere(url: str, channel: str, hold: float = 0.0) -> float:
    """NOTIFY as another process would (a plain connection, no Session: no local wake-up);
    returns when it committed."""
    with psycopg.connect(pg_listen.conninfo(url)) as conn:
        conn.execute("SELECT pg_notify(%s, '')", [wakeups.pg_channel(channel)])
        time.sleep(hold)
        conn.commit()
        return time.monotonic()


@pytest.mark.server
def test_the_listener_wakes_local_waiters_for_notifications_of_other_processes(
    settings: Settings, factory: sessionmaker[Session]
) -> None:
    url = _pg(settings)
    waiter = Waiter(factory, wakeups.DELIVERIES)
    listener = pg_listen.acquire(url)
    try:
        assert listener.connected.wait(10)
        wakeups.add_waiter(waiter.channel, waiter)  # after the connect's own wake-up
        holder = threading.Thread(target=_notify_from_elsewhere, args=(url, "deliveries", 0.5))
        holder.start()
        assert not waiter.woken.wait(0.3)  # not while the sender's transaction is open
        holder.join()
        committed = time.monotonic()
        assert waiter.woken.wait(2)
        assert time.monotonic() - committed < 1.0
        assert pg_listen.acquire(url) is listener  # one per process and database
        pg_listen.release(listener)
    finally:
        wakeups.remove_waiter(waiter.channel, waiter)
        pg_listen.release(listener)
    assert not listener.connected.is_set()  # the last user stopped it


@pytest.mark.server
def test_the_listener_reconnects_after_its_connection_is_killed(
    settings: Settings, factory: sessionmaker[Session]
) -> None:
    url = _pg(settings)
    listener = pg_listen.PgListener(url, backoff_start=0.05)
    listener.start()
    waiter = Waiter(factory, wakeups.OUTBOX)
    try:
        assert listener.connected.wait(10)
        first = listener.backend_pid
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            killed = conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": first}).scalar()
        admin.dispose()
        assert killed
        deadline = time.monotonic() + 15
        while (listener.connects < 2 or not listener.connected.is_set()) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.02)
        assert listener.connects == 2 and listener.backend_pid != first
        wakeups.add_waiter(waiter.channel, waiter)
        _notify_from_elsewhere(url, "outbox")
        assert waiter.woken.wait(2)
    finally:
        wakeups.remove_waiter(waiter.channel, waiter)
        started = time.monotonic()
        listener.stop()
        assert time.monotonic() - started < 1  # stops at once, not at its next tick


@pytest.mark.server
def test_the_listener_wakes_at_the_notification_not_at_its_next_tick(
    settings: Settings, factory: sessionmaker[Session]
) -> None:
    url = _pg(settings)
    listener = pg_listen.PgListener(url, tick=3.0)
    listener.start()
    waiter = Waiter(factory, wakeups.OUTBOX)
    try:
        assert listener.connected.wait(10)
        time.sleep(0.2)  # the connect's own wake-up has gone by
        wakeups.add_waiter(waiter.channel, waiter)
        for _ in range(3):
            waiter.woken.clear()
            committed = _notify_from_elsewhere(url, "outbox")
            assert waiter.woken.wait(3)
            assert time.monotonic() - committed < 1.0  # far less than the 3 s tick
    finally:
        wakeups.remove_waiter(waiter.channel, waiter)
        listener.stop()
