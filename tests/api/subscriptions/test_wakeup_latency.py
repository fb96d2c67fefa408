"""Notifications leave at the commit that recorded them, not at the next poll (issue 12).

The relays' poll interval is set to 30 s here, so anything that arrives within a couple of
seconds was carried by a wake-up: the write's commit wakes the outbox relay, the evaluation's
commit (which recorded the deliveries) wakes the delivery relay, and a failed attempt's retry
is made when it falls due. The real app and database (SQLite; PostgreSQL with
ALERTS_TEST_SERVERS=1), the in-process worker, real HTTP receivers on loopback.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from service.config import Settings
from tests.api.subscriptions.receiver import Receiver, free_port, wait_until
from tests.api.subscriptions.test_delivery import fast_backoff
from tests.builders import back_pain_story
from tests.builders.subscriptions import subscription
from tests.conftest import R4Validator

POLL = 30.0  # far longer than any wait below
PROMPT = 2.0  # seconds from the write's answer to the notification, with room for a slow CI


@pytest.fixture
def slow_poll(settings: Settings) -> Iterator[TestClient]:
    from workers.embedded import build_app

    app = build_app(settings.model_copy(update={"relay_interval_seconds": POLL}))
    with TestClient(app) as c:
        yield c


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def _subscribe(client: TestClient, headers: dict[str, str], endpoint: str) -> str:
    r = client.post("/fhir/Subscription", json=subscription(endpoint), headers=headers)
    assert r.status_code == 201 and r.json()["status"] == "active", r.text
    return str(r.json()["id"])


def _post_alerting_patient(client: TestClient, headers: dict[str, str], pid: str) -> float:
    """Posts a patient who must raise an urgent alert; returns when the write was answered."""
    r = client.post("/fhir", json=back_pain_story(pid), headers=headers)
    assert r.status_code == 200, r.text
    return time.monotonic()


def test_an_alert_is_notified_at_once_not_at_the_relays_next_poll(
    slow_poll: TestClient,
    headers: dict[str, str],
    receiver: Receiver,
    r4_validate: R4Validator,
) -> None:
    _subscribe(slow_poll, headers, receiver.url)
    time.sleep(0.3)  # the relays' first passes are done: from here on they wait 30 s
    written = _post_alerting_patient(slow_poll, headers, "wake-api-1")
    wait_until(lambda: len(receiver.accepted()) >= 1, timeout=PROMPT + 5, what="notification")
    arrived = time.monotonic()
    assert arrived - written < PROMPT, f"notified {arrived - written:.2f} s after the write"
    [got] = receiver.accepted()
    bundle = orjson.loads(got.body)
    [entry] = bundle["entry"]
    assert entry["resource"]["resourceType"] == "CommunicationRequest"
    assert entry["resource"]["subject"]["reference"] == "Patient/wake-api-1"
    r4_validate([bundle])


def test_a_failed_attempt_is_retried_when_due_not_at_the_next_poll(
    slow_poll: TestClient,
    headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fast_backoff(monkeypatch)  # first retry 0.1 s after a failure
    flaky = Receiver(fail_first=1).start()
    try:
        _subscribe(slow_poll, headers, flaky.url)
        time.sleep(0.3)
        written = _post_alerting_patient(slow_poll, headers, "wake-api-2")
        wait_until(lambda: len(flaky.accepted()) >= 1, timeout=PROMPT + 5, what="the retry")
        assert time.monotonic() - written < PROMPT
        assert [r.answered for r in flaky.requests] == [503, 200]
    finally:
        flaky.stop()


class StalledReceiver:
    """Accepts connections but answers only when released (or after `hold` seconds)."""

    def __init__(self, hold: float) -> None:
        self.port = free_port()
        self.release = threading.Event()
        self.started = threading.Event()
        stalled = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                stalled.started.set()
                stalled.release.wait(hold)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


def test_a_slow_receiver_does_not_hold_up_another_subscriptions_notification(
    slow_poll: TestClient, headers: dict[str, str], receiver: Receiver
) -> None:
    stalled = StalledReceiver(hold=8.0)
    try:
        _subscribe(slow_poll, headers, stalled.url)  # its delivery is handed out first
        _subscribe(slow_poll, headers, receiver.url)
        time.sleep(0.3)
        written = _post_alerting_patient(slow_poll, headers, "wake-api-3")
        wait_until(lambda: len(receiver.accepted()) >= 1, timeout=PROMPT + 5, what="the fast one")
        assert time.monotonic() - written < PROMPT
        assert stalled.started.is_set() and not stalled.release.is_set()  # still waiting
    finally:
        stalled.stop()
