"""One writer at a time per SQLite file in this process, handed over in arrival order.

SQLite allows one write transaction at a time. Left to itself, a connection that finds the file
locked polls: its busy handler sleeps 1, 2, 5 ... up to 100 ms between tries, so under load a
waiting request often sleeps long after the lock came free (measured with 8 concurrent writers
plus the in-process worker: p99 650–1,250 ms for single POSTs, a third of all samples asleep in
`BEGIN IMMEDIATE`). Queueing the process's own writers on a FIFO lock hands the file over the
moment the previous transaction ends, and in order, so no writer starves. Other processes on the
same file (a CLI next to `serve`) still meet SQLite's busy timeout, as before.

The lock is taken at `BEGIN IMMEDIATE` and given back when the connection commits, rolls back or
closes; `WriterConnection` is the `sqlite3.Connection` subclass that does the giving back.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import deque
from typing import Any


class WriterQueueTimeout(sqlite3.OperationalError):
    """Waited longer than the busy timeout for this process's other writers."""


class FairLock:
    """A FIFO lock not owned by a thread: whoever holds it may release it."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiters: deque[threading.Event] = deque()
        self._held = False

    def acquire(self, timeout: float) -> None:
        with self._mutex:
            if not self._held and not self._waiters:
                self._held = True
                return
            turn = threading.Event()
            self._waiters.append(turn)
        if turn.wait(timeout):
            return  # handed over by release(): we hold it now
        with self._mutex:
            if turn.is_set():  # handed over just as we gave up
                return
            self._waiters.remove(turn)
        raise WriterQueueTimeout("database is locked (waited for this process's writers)")

    def release(self) -> None:
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().set()  # ownership passes straight on; _held stays
            else:
                self._held = False


class WriterConnection(sqlite3.Connection):
    """Gives the process's write lock back when its transaction ends, however it ends."""

    writer_lock: FairLock  # set on the per-engine subclass made by `connection_class`
    _holding = False

    def begin_immediate(self, timeout: float) -> None:
        self.writer_lock.acquire(timeout)
        self._holding = True
        try:
            self.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._give_back()
            raise

    def _give_back(self) -> None:
        if self._holding:
            self._holding = False
            self.writer_lock.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._give_back()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._give_back()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._give_back()


def connection_class() -> type[WriterConnection]:
    """A connection class with its own lock: one per engine, i.e. per database file."""
    attrs: dict[str, Any] = {"writer_lock": FairLock()}
    return type("EngineWriterConnection", (WriterConnection,), attrs)
