"""A background thread that runs one pass of work, then sleeps until its interval passes or a
commit nudges it. The outbox relay and the delivery relay are both this loop."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)


class PollingThread:
    def __init__(self, *, name: str, interval: float) -> None:
        self._name = name
        self._interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """One pass; returns how many items were handed on (0 = idle)."""
        raise NotImplementedError

    def nudge(self) -> None:
        """New work was just committed: look now rather than at the next tick."""
        self._wake.set()

    def _loop(self) -> None:
        failing = False
        while not self._stop.is_set():
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
                handed = 0
            else:
                if failing:
                    log.info("%s recovered", self._name)
                failing = False
            if not handed:  # busy: go straight on; idle: wait for a nudge or the interval
                self._wake.wait(self._interval)
                self._wake.clear()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
