"""Topic-based Subscriptions with real processes (server tier only): `fhir-alerts serve` on
PostgreSQL + Redis, one Celery worker running beat (heartbeats come from the beat entry
`subscription-heartbeat-check`), a loopback receiver that is not listening at first. The
receiver fetches what it missed with `$status` / `$events` and then gets every notification
once it is up: handshake, the event, heartbeats."""

from __future__ import annotations

import itertools
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from contract.topics import ALERT_OPENED
from tests.api.subscriptions.receiver import Receiver, wait_until
from tests.api.subscriptions.topic_helpers import of_type, status_of, topic_subscription
from tests.builders import back_pain_story
from tests.e2e.processes import api_server, kill, start
from tests.e2e.test_celery_worker import _alerts, _env, _headers, _wait_backlog

pytestmark = pytest.mark.server


def test_real_worker_numbers_events_beats_and_a_late_receiver_recovers(
    tmp_path: Path, pg_database: str | None
) -> None:
    env = _env(
        tmp_path,
        pg_database,
        ALERTS_DELIVERY_BASE_DELAY_SECONDS="0.3",
        ALERTS_DELIVERY_MAX_DELAY_SECONDS="1",
        ALERTS_DELIVERY_MAX_ATTEMPTS="100",
        ALERTS_DELIVERY_TIMEOUT_SECONDS="3",
        ALERTS_DELIVERY_HEARTBEAT_CHECK_SECONDS="0.5",
        ALERTS_SUBSCRIPTION_ALLOWED_HOSTS="127.0.0.1",
    )
    h = _headers(env)
    receiver = Receiver()  # not listening yet
    worker = start(["worker", "--concurrency", "2", "--beat"], env, tmp_path / "worker.log")
    try:
        with api_server(env, tmp_path / "api.log") as base:
            body = topic_subscription(receiver.url, ALERT_OPENED, heartbeat=2)
            r = httpx.post(f"{base}/fhir/Subscription", json=body, headers=h, timeout=30)
            assert r.status_code == 201 and r.json()["status"] == "active", r.text
            sid = r.json()["id"]
            r = httpx.post(f"{base}/fhir", json=back_pain_story("topic-e2e"), headers=h, timeout=30)
            assert r.status_code == 200, r.text
            _wait_backlog(base, h)
            _flags, [cr] = _alerts(base, h, "topic-e2e")

            def since_start() -> Any:
                got = httpx.get(f"{base}/fhir/Subscription/{sid}/$status", headers=h).json()
                return status_of(got)["events-since-subscription-start"]

            wait_until(lambda: since_start() == "1", timeout=60, what="event 1 recorded")
            r = httpx.get(f"{base}/fhir/Subscription/{sid}/$events?eventsSinceNumber=1", headers=h)
            assert r.status_code == 200, r.text
            replay = r.json()
            assert [e["event-number"] for e in status_of(replay)["notification-event"]] == ["1"]
            assert replay["entry"][1]["resource"]["id"] == cr["id"]

            receiver.start()
            wait_until(
                lambda: len(of_type(receiver, sid, "heartbeat")) >= 2,
                timeout=60,
                what="heartbeats from the beat",
            )
            [handshake] = of_type(receiver, sid, "handshake")
            events = of_type(receiver, sid, "event-notification")
            assert {status_of(e)["notification-event"][0]["event-number"] for e in events} == {"1"}
            assert events[0]["entry"][1]["resource"]["id"] == cr["id"]
            assert status_of(handshake)["events-since-subscription-start"] == "0"
            for beat in of_type(receiver, sid, "heartbeat"):
                assert status_of(beat)["events-since-subscription-start"] == "1"
            # Heartbeats are at least a period (2 s) apart, by their recorded times.
            stamps = sorted(
                datetime.fromisoformat(b["timestamp"].replace("Z", "+00:00"))
                for b in of_type(receiver, sid, "heartbeat")
            )
            assert all((b - a).total_seconds() >= 2 for a, b in itertools.pairwise(stamps))
    finally:
        kill(worker)
        receiver.stop()
    log = (tmp_path / "worker.log").read_text(errors="replace")
    assert "workers.tasks.check_heartbeats" in log
    assert "back pain" not in log.lower()
