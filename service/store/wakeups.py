"""Wake-ups: a committed transaction that produced work wakes whoever hands that work on.

Without them the relays only see new outbox rows and deliveries at their next poll, which put
a few hundred milliseconds between an alert and its notification (issue 12). The writer calls
`signal(session, channel)` inside its transaction; when (and only when) that transaction
commits, this process's waiters on the channel are woken (the relays' `nudge`). On PostgreSQL
`signal` also issues `pg_notify('fhir_alerts_<channel>', '')` in the transaction: NOTIFY is
delivered only on commit and collapsed per transaction, and `pg_listen` turns it into the same
local wake-up in every other process (the API's relays learn of deliveries the Celery worker
recorded, and a second API process of outbox rows written by the first). A rolled-back
transaction wakes nobody. Wake-ups only shorten a wait: every relay still polls, so a lost one
costs a poll interval, never a notification.

Waiters are keyed by database (`database_key`), so an app on one database never wakes the
relays of another in the same process (tests run many apps side by side).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

log = logging.getLogger(__name__)

OUTBOX = "outbox"
DELIVERIES = "deliveries"
CHANNELS = (OUTBOX, DELIVERIES)
PREFIX = "fhir_alerts_"

# session.info keys: channels to wake on commit, channels already NOTIFYed at top level, and
# channels whose work this process hands out itself (no NOTIFY).
_WAKE = "fhir_alerts_wake"
_NOTIFIED = "fhir_alerts_notified"
_LOCAL = "fhir_alerts_local"

Waiter = Callable[[], None]


def pg_channel(channel: str) -> str:
    """The PostgreSQL LISTEN/NOTIFY channel of a wake-up channel."""
    return PREFIX + channel


_NOTIFY = {c: f"NOTIFY {pg_channel(c)}" for c in CHANNELS}


def database_key(url: str | URL) -> str:
    """Which database a waiter waits on: the URL without its password (never logged anyway)."""
    return _rendered(make_url(url) if isinstance(url, str) else url)


@lru_cache(maxsize=64)
def _rendered(url: URL) -> str:
    # Cached: `signal` asks in every write's transaction, and rendering a URL is not free.
    return url.render_as_string(hide_password=True)


def factory_key(factory: sessionmaker[Session]) -> str:
    """The database key of a session factory (bound to one engine, as `session_factory`'s)."""
    bind = factory.kw.get("bind")
    if bind is None:
        raise ValueError("the session factory is not bound to an engine")
    return database_key(bind.url)


@dataclass(frozen=True, slots=True)
class Channel:
    """One channel of one database: what a relay waits on."""

    database: str
    name: str


class _Waiters:
    """The process's waiters, per (database, channel). Callbacks must be quick and not block:
    they run in the committing thread (a relay's `nudge` only sets an Event)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_channel: dict[Channel, list[Waiter]] = {}

    def add(self, channel: Channel, waiter: Waiter) -> None:
        with self._lock:
            self._by_channel.setdefault(channel, []).append(waiter)

    def remove(self, channel: Channel, waiter: Waiter) -> None:
        with self._lock:
            waiters = self._by_channel.get(channel, [])
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters:
                self._by_channel.pop(channel, None)

    def wake(self, channel: Channel) -> int:
        with self._lock:
            waiters = list(self._by_channel.get(channel, ()))
        for waiter in waiters:
            try:
                waiter()
            except Exception:  # a broken waiter must not fail the commit that woke it
                log.exception("wake-up waiter on %s failed", channel.name)
        return len(waiters)


_waiters = _Waiters()


def add_waiter(channel: Channel, waiter: Waiter) -> None:
    """Call `waiter()` whenever work on `channel` is committed (in this process or, on
    PostgreSQL with a running listener, in any other)."""
    _waiters.add(channel, waiter)


def remove_waiter(channel: Channel, waiter: Waiter) -> None:
    _waiters.remove(channel, waiter)


def wake(channel: Channel) -> int:
    """Wake this process's waiters on `channel` now; returns how many there were."""
    return _waiters.wake(channel)


def local_only(session: Session, channel: str) -> None:
    """This transaction's process hands out the work it records on `channel` itself (a Celery
    worker sends the notifications its evaluation recorded, right after the commit): wake
    this process's waiters, but NOTIFY no other process. The API's relays would only race the
    worker for the same rows, an empty claim per evaluation under load; their poll still
    finds anything the worker fails to hand out."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown wake-up channel {channel!r}")
    session.info.setdefault(_LOCAL, set()).add(channel)


def signal(session: Session, channel: str) -> None:
    """The current transaction produced work on `channel` ("outbox", "deliveries"): wake its
    waiters if and when the transaction commits."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown wake-up channel {channel!r}")
    bind = session.get_bind()
    info = session.info
    info.setdefault(_WAKE, {})[channel] = database_key(bind.engine.url)
    if bind.dialect.name != "postgresql" or channel in info.get(_LOCAL, ()):
        return
    # One NOTIFY per channel per transaction. Inside a savepoint it is issued every time and
    # not remembered: a savepoint rolled back takes its NOTIFY with it, and a later signal at
    # the top level must not believe it was already sent.
    nested = session.in_nested_transaction()
    notified: set[str] = info.setdefault(_NOTIFIED, set())
    if nested or channel not in notified:
        # On the transaction's connection, not `session.execute`: no autoflush, so the
        # caller's pending rows are flushed when it would have flushed them anyway. A fixed
        # NOTIFY string (our own channel names) skips building and compiling a statement in
        # every write's transaction.
        session.connection().exec_driver_sql(_NOTIFY[channel])
        if not nested:
            notified.add(channel)


def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint released: the data is not visible yet
        return
    pending: dict[str, str] = session.info.pop(_WAKE, None) or {}
    session.info.pop(_NOTIFIED, None)
    session.info.pop(_LOCAL, None)
    for channel, database in pending.items():
        wake(Channel(database, channel))


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    # The outermost transaction ended without a commit (after_commit already took what a
    # commit had): a rollback wakes nobody and leaves nothing for the next transaction.
    if transaction.parent is None:
        session.info.pop(_WAKE, None)
        session.info.pop(_NOTIFIED, None)
        session.info.pop(_LOCAL, None)


def _register() -> None:
    """Listen on every Session of the process, once (import is the only caller)."""
    hooks: list[tuple[str, Any]] = [
        ("after_commit", _after_commit),
        ("after_transaction_end", _after_transaction_end),
    ]
    for name, fn in hooks:
        if not event.contains(Session, name, fn):
            event.listen(Session, name, fn)


_register()
