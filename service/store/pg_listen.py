"""PostgreSQL LISTEN: wake-ups committed by other processes, turned into local ones.

`wakeups.signal` NOTIFYs `fhir_alerts_<channel>` in the writer's transaction; this thread,
one per database per process (`acquire`/`release`, shared by every app of the process),
holds its own autocommit psycopg connection listening on those channels and wakes the
process's waiters (`wakeups.wake`). That is how the API's delivery relay learns within
milliseconds of deliveries recorded by the Celery worker, and a second API process of outbox
rows written by the first.

It survives a database restart: a broken connection is retried with back-off (0.1 s doubling
to 5 s), and after every (re)connect all channels are woken once, since notifications sent
while disconnected are lost; meanwhile the relays' own poll covers everything. An idle
connection is checked every `health_every` seconds (and by TCP keepalives), so a silently
dropped one is noticed. `stop` wakes the thread at once.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
import time
from dataclasses import dataclass

import psycopg
from sqlalchemy.engine import make_url

from service.store import wakeups

log = logging.getLogger(__name__)


def conninfo(url: str) -> str:
    """A libpq URI from the service's SQLAlchemy URL (`postgresql+psycopg://...`)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


class PgListener:
    def __init__(
        self,
        url: str,
        *,
        tick: float = 1.0,
        health_every: float = 10.0,
        backoff_start: float = 0.1,
        backoff_max: float = 5.0,
    ) -> None:
        self._conninfo = conninfo(url)
        self._database = wakeups.database_key(url)
        self._tick = tick
        self._health_every = health_every
        self._backoff_start = backoff_start
        self._backoff_max = backoff_max
        self._stop = threading.Event()
        # A byte from `stop` wakes the select at once, so shutting down takes no tick.
        self._stop_pair: tuple[socket.socket, socket.socket] | None = None
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()  # set while LISTENing (tests wait on it)
        self.backend_pid: int | None = None  # the listening connection's server process
        self.connects = 0  # successful (re)connects

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._stop_pair = socket.socketpair()
            self._thread = threading.Thread(
                target=self._run, args=(self._stop_pair[0],), name="pg-listen", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        pair, self._stop_pair = self._stop_pair, None
        if pair is not None:
            with contextlib.suppress(OSError):
                pair[1].send(b"x")
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if pair is not None:
            for end in pair:
                end.close()

    def _wake_all(self) -> None:
        for channel in wakeups.CHANNELS:
            wakeups.wake(wakeups.Channel(self._database, channel))

    def _run(self, stop_signal: socket.socket) -> None:
        backoff = self._backoff_start
        failing = False
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    self._conninfo,
                    autocommit=True,
                    connect_timeout=5,
                    keepalives=1,
                    keepalives_idle=10,
                    keepalives_interval=5,
                    keepalives_count=3,
                    application_name="fhir-alerts-listen",
                ) as conn:
                    for channel in wakeups.CHANNELS:
                        conn.execute(f"LISTEN {wakeups.pg_channel(channel)}")
                    self.backend_pid = conn.info.backend_pid
                    self.connects += 1
                    self.connected.set()
                    if failing:
                        log.info("notification listener reconnected")
                    failing = False
                    backoff = self._backoff_start
                    self._wake_all()  # anything committed while we were not listening
                    self._listen(conn, stop_signal)
            except Exception as exc:
                if not failing:  # once per outage, not once per retry
                    _log_failure(exc)
                failing = True
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self._backoff_max)
            finally:
                self.connected.clear()

    def _listen(self, conn: psycopg.Connection, stop_signal: socket.socket) -> None:
        # Our own select on the socket, then a non-blocking read: psycopg's
        # `notifies(timeout=t)` yields what arrived only when `t` runs out (measured with
        # psycopg 3.3), which would add up to a tick to every wake-up.
        quiet_since = time.monotonic()
        with selectors.DefaultSelector() as selector:
            selector.register(conn.fileno(), selectors.EVENT_READ)
            selector.register(stop_signal, selectors.EVENT_READ)
            while not self._stop.is_set():
                events = selector.select(timeout=self._tick)
                readable = any(key.fileobj is not stop_signal for key, _ in events)
                channels = {n.channel for n in conn.notifies(timeout=0)} if readable else set()
                for name in channels:
                    channel = name.removeprefix(wakeups.PREFIX)
                    if channel in wakeups.CHANNELS:
                        wakeups.wake(wakeups.Channel(self._database, channel))
                now = time.monotonic()
                if readable:
                    quiet_since = now
                elif now - quiet_since >= self._health_every:
                    conn.execute("SELECT 1")  # raises if the server went away silently
                    quiet_since = now


def _log_failure(exc: Exception) -> None:
    if isinstance(exc, psycopg.Error):  # the database went away: expected, no traceback
        log.warning(
            "notification listener lost its connection (%s); relays poll meanwhile",
            type(exc).__name__,
        )
    else:
        log.exception("notification listener failed; relays poll meanwhile")


@dataclass
class _Shared:
    listener: PgListener
    users: int = 0


_lock = threading.Lock()
_shared: dict[str, _Shared] = {}


def acquire(url: str) -> PgListener:
    """The process's listener on this database, started on first use."""
    key = wakeups.database_key(url)
    with _lock:
        shared = _shared.get(key)
        if shared is None:
            shared = _shared[key] = _Shared(PgListener(url))
            shared.listener.start()
        shared.users += 1
        return shared.listener


def release(listener: PgListener) -> None:
    """Stops the listener when its last user releases it."""
    with _lock:
        key = next((k for k, s in _shared.items() if s.listener is listener), None)
        if key is None:
            return
        _shared[key].users -= 1
        if _shared[key].users > 0:
            return
        del _shared[key]
    listener.stop()
