"""The rest-hook end of the pipeline benchmark: an HTTP receiver on 127.0.0.1 that a
Subscription (full-resource payload) delivers alert notifications to.

It stamps each notification on arrival (before parsing) and keys it by the patient the alert is
about, so the benchmark can tell write→notification latency per patient and check that every
patient was notified exactly once: a second notification id for one patient is a duplicate, the
same notification id again is a redelivery (at-least-once delivery; receivers drop those).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from _procs import free_port


@dataclass(frozen=True, slots=True)
class Notice:
    at: float  # perf_counter on arrival
    delivery: str  # X-FHIR-Alerts-Delivery: the notification id, the same on every retry
    patient: str  # "Patient/<id>" from the alert's subject, "" when absent


def _patient_of(body: bytes) -> str:
    """The subject of the first entry that has one (a plain R4 notification has one entry; a
    topic-style one starts with a status entry without a subject)."""
    try:
        entries = orjson.loads(body).get("entry") or []
        for entry in entries:
            reference = ((entry.get("resource") or {}).get("subject") or {}).get("reference")
            if reference:
                return str(reference)
    except (orjson.JSONDecodeError, TypeError, AttributeError):
        pass
    return ""


class Receiver:
    """A threaded HTTP server recording every notification; use as a context manager."""

    def __init__(self) -> None:
        self.port = free_port()
        self._notices: list[Notice] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _record(self, notice: Notice) -> None:
        with self._lock:
            self._notices.append(notice)

    def __enter__(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                at = time.perf_counter()
                delivery = self.headers.get("X-FHIR-Alerts-Delivery", "")
                receiver._record(Notice(at, delivery, _patient_of(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def notices(self) -> list[Notice]:
        with self._lock:
            return list(self._notices)

    def first_arrival(self) -> dict[str, float]:
        """Patient reference → arrival time of that patient's first notification."""
        first: dict[str, float] = {}
        for n in self.notices():
            if n.patient and n.patient not in first:
                first[n.patient] = n.at
        return first

    def count_notified(self, patients: Iterable[str]) -> int:
        first = self.first_arrival()
        return sum(1 for p in patients if p in first)

    def tally(self, patients: Iterable[str]) -> dict[str, int]:
        """Exactly-once bookkeeping for the expected `patients`: how many were notified, how many
        got more than one distinct notification (and how many extra), how many notifications
        were redeliveries of an id already received, and notifications about anyone else."""
        expected = set(patients)
        ids: dict[str, set[str]] = {}
        seen: set[str] = set()
        redeliveries = others = 0
        for n in self.notices():
            if n.delivery and n.delivery in seen:
                redeliveries += 1
                continue
            seen.add(n.delivery)
            if n.patient in expected:
                ids.setdefault(n.patient, set()).add(n.delivery)
            else:
                others += 1
        extra = sum(len(v) - 1 for v in ids.values())
        return {
            "patients": len(expected),
            "notified": len(ids),
            "notified_twice_or_more": sum(1 for v in ids.values() if len(v) > 1),
            "duplicate_notifications": extra,
            "redeliveries": redeliveries,
            "other_notifications": others,
        }
