"""The production shape notifies at the worker's commit, not at the API's next poll (issue 12).

`fhir-alerts serve` and a real Celery worker (`fhir-alerts worker`) on PostgreSQL and Redis,
with the relays' poll interval at 30 s: the evaluation runs in the worker process, which can
only reach the API's delivery relay through PostgreSQL NOTIFY and the API's listener thread.
A notification within a couple of seconds of the write can only have come that way. CI's
server pass only (ALERTS_TEST_SERVERS=1)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from service.auth import mint
from tests.api.subscriptions.receiver import Receiver, wait_until
from tests.builders import back_pain_story
from tests.builders.subscriptions import subscription
from tests.e2e.processes import api_server, kill, start
from tests.e2e.test_server_delivery import _env

pytestmark = pytest.mark.server

PROMPT = 2.0


def _patients(receiver: Receiver) -> list[str]:
    out = []
    for got in receiver.accepted():
        [entry] = orjson.loads(got.body)["entry"]
        out.append(entry["resource"]["subject"]["reference"])
    return out


def test_the_workers_alert_reaches_the_receiver_without_waiting_for_a_poll(
    tmp_path: Path, pg_database: str | None, settings: Any
) -> None:
    env = {**_env(tmp_path, pg_database), "ALERTS_RELAY_INTERVAL_SECONDS": "30"}
    h = {
        "Authorization": f"Bearer {mint(env['ALERTS_JWT_SECRET'])}",
        "Content-Type": "application/fhir+json",
    }
    receiver = Receiver().start()
    worker = start(["worker", "--concurrency", "1"], env, tmp_path / "worker.log")
    try:
        with api_server(env, tmp_path / "api.log") as base:
            fhir = f"{base}/fhir"
            r = httpx.post(f"{fhir}/Subscription", json=subscription(receiver.url), headers=h)
            assert r.status_code == 201 and r.json()["status"] == "active", r.text
            # The first patient also waits out the worker's start-up.
            r = httpx.post(fhir, json=back_pain_story("wake-e2e-1"), headers=h, timeout=30)
            assert r.status_code == 200, r.text
            wait_until(lambda: len(receiver.accepted()) == 1, timeout=90, what="first alert")
            time.sleep(0.5)  # every relay is back in its 30 s wait
            r = httpx.post(fhir, json=back_pain_story("wake-e2e-2"), headers=h, timeout=30)
            assert r.status_code == 200, r.text
            written = time.monotonic()
            wait_until(lambda: len(receiver.accepted()) == 2, timeout=PROMPT + 10, what="alert")
            took = time.monotonic() - written
            assert took < PROMPT, f"notified {took:.2f} s after the write"
            time.sleep(0.5)  # anything extra would arrive now
            assert _patients(receiver) == ["Patient/wake-e2e-1", "Patient/wake-e2e-2"]
    finally:
        kill(worker)
        receiver.stop()
    log = (tmp_path / "api.log").read_text(errors="replace")
    assert "notification listener" not in log  # it never lost its connection
