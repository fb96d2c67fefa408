"""A worker hands out the notifications its own evaluation recorded (issue 12, latency).

No API process runs here: the data is written through the app in the test (no relays), and the
evaluation is published to Redis by hand, as the outbox relay would. With no delivery relay
anywhere, the notification can only reach the receiver through the worker's own hand-off right
after its commit (workers/tasks.py `_hand_out_notifications`). Server run only.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.auth import mint
from service.config import Settings
from tests.api.subscriptions.receiver import Receiver, wait_until
from tests.builders import back_pain_story
from tests.builders.subscriptions import subscription
from tests.e2e.processes import kill, start
from tests.e2e.test_server_delivery import _env

pytestmark = pytest.mark.server


def test_the_worker_delivers_its_alert_without_any_relay(
    tmp_path: Path, pg_database: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _env(tmp_path, pg_database)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    h = {
        "Authorization": f"Bearer {mint(env['ALERTS_JWT_SECRET'])}",
        "Content-Type": "application/fhir+json",
    }
    receiver = Receiver().start()
    try:
        with TestClient(create_app(settings, dispatcher=None, start_relay=False)) as client:
            r = client.post("/fhir/Subscription", json=subscription(receiver.url), headers=h)
            assert r.status_code == 201, r.text
            r = client.post("/fhir", json=back_pain_story("handoff-1"), headers=h)
            assert r.status_code == 200, r.text
        worker = start(["worker", "--concurrency", "1"], env, tmp_path / "worker.log")
        try:
            publisher = Celery("test-publisher", broker=env["ALERTS_BROKER_URL"])
            publisher.send_task(
                "workers.tasks.evaluate_patient", args=["handoff-1", None], queue="evaluate"
            )
            wait_until(lambda: len(receiver.accepted()) == 1, timeout=60, what="alert")
            time.sleep(0.5)
            got: list[Any] = receiver.accepted()
            assert len(got) == 1
            assert b"Patient/handoff-1" in got[0].body
        finally:
            kill(worker)
    finally:
        receiver.stop()
