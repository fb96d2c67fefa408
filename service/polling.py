"""A background thread that runs one pass of work, then sleeps until its interval passes or a
commit wakes it. The outbox relay and the delivery relay are both this loop.

Wake-ups (`service.store.wakeups`) make the relays react to a commit within milliseconds, in
this process or (PostgreSQL) any other; the interval is the safety net for a lost wake-up.
"""

from __future__ import annotations

import logging
import threading
import time

from service.store import wakeups

log = logging.getLogger(__name__)

# The relays' `min_gap`: at most this much added to a hand-off under load, for claims and
# evaluation batches that grow with the write rate (issue 12's profiles: one claim transaction
# per single POST was a quarter of the production API's time).
RELAY_PASS_GAP_SECONDS = 0.01


class PollingThread:
    def __init__(
        self,
        *,
        name: str,
        interval: float,
        wake_on: wakeups.Channel | None = None,
        min_gap: float = 0.0,
    ) -> None:
        self._name = name
        self._interval = interval
        self._min_gap = min_gap
        self._wake_on = wake_on
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """One pass; returns how many items were handed on (0 = idle)."""
        raise NotImplementedError

    def idle_wait(self) -> float:
        """How long to sleep after an idle pass unless woken (a subclass that knows when its
        next item falls due may wait less)."""
        return self._interval

    def saturated(self, handed: int) -> bool:
        """Did the pass stop at its limit, so more work is surely waiting? Then the loop goes
        straight on; otherwise it waits, and a commit made during the pass (which set the
        wake-up) ends the wait at once. The default: any item handed out counts."""
        return handed > 0

    def nudge(self) -> None:
        """New work was just committed: look now rather than at the next tick."""
        self._wake.set()

    def _loop(self) -> None:
        failing = False
        started = float("-inf")
        while not self._stop.is_set():
            # Passes start at least `min_gap` apart: under load (a wake-up per commit, hundreds
            # a second) each pass then takes the commits of the last few milliseconds together
            # (one claim, one batch) instead of one claim transaction per write; a wake-up
            # after a quiet spell is served at once.
            rest = self._min_gap - (time.monotonic() - started)
            if rest > 0 and self._stop.wait(rest):
                break
            started = time.monotonic()
            # Cleared before the pass, never after the wait: a wake-up that arrives while a
            # pass runs (or just as a wait times out) makes the next wait return at once
            # instead of being lost until the next tick.
            self._wake.clear()
            try:
                handed = self.run_once()
            except Exception as exc:
                # The first failure of a run with its traceback; then one line per pass, so a
                # database outage does not fill the log with identical tracebacks.
                if failing:
                    log.warning("%s pass failed again (%s)", self._name, type(exc).__name__)
                else:
                    log.exception("%s pass failed; retrying", self._name)
                failing = True
                self._wake.wait(self._interval)  # no hot loop while the database is down
                continue
            if failing:
                log.info("%s recovered", self._name)
            failing = False
            if not self.saturated(handed):  # busy: go straight on; else wait for a wake-up
                self._wake.wait(self.idle_wait() if not handed else self._interval)

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            if self._wake_on is not None:
                wakeups.add_waiter(self._wake_on, self._wake.set)
            self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._wake_on is not None:
            wakeups.remove_waiter(self._wake_on, self._wake.set)
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
