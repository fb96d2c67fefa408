"""Push delivery with real processes: `fhir-alerts serve` publishes to Redis, a real Celery
worker (`fhir-alerts worker`) evaluates and delivers into PostgreSQL and to a loopback
receiver. CI's server pass only (ALERTS_TEST_SERVERS=1), where missing servers fail."""

from __future__ import annotations

import random
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis

from service.auth import mint
from service.subscriptions.signing import verify
from tests.api.subscriptions.receiver import Receiver, wait_until
from tests.builders import back_pain_story
from tests.builders.subscriptions import SECRET, subscription
from tests.conftest import REDIS_URL
from tests.e2e.processes import api_server, kill, start

pytestmark = pytest.mark.server


def _env(tmp_path: Path, pg_database: str | None) -> dict[str, str]:
    assert pg_database, "the server run needs PostgreSQL"
    broker = REDIS_URL.rsplit("/", 1)[0] + f"/{random.randint(1, 15)}"
    redis.Redis.from_url(broker).flushdb()  # a connection error fails the test, as it must
    return {
        "ALERTS_DATA_DIR": str(tmp_path / "data"),
        "ALERTS_DATABASE_URL": pg_database,
        "ALERTS_BROKER_URL": broker,
        "ALERTS_JWT_SECRET": "push-e2e-" + uuid.uuid4().hex,
        "ALERTS_RELAY_INTERVAL_SECONDS": "0.2",
        "ALERTS_DELIVERY_BASE_DELAY_SECONDS": "0.3",
        "ALERTS_DELIVERY_MAX_DELAY_SECONDS": "1",
        "ALERTS_DELIVERY_MAX_ATTEMPTS": "100",
        "ALERTS_DELIVERY_TIMEOUT_SECONDS": "3",
        "ALERTS_SUBSCRIPTION_ALLOWED_HOSTS": "127.0.0.1",  # the loopback test receiver
    }


def _location(body: bytes) -> str:
    return str(orjson.loads(body)["entry"][0]["response"]["location"])


def test_real_worker_delivers_each_change_once_after_the_receiver_comes_up(
    tmp_path: Path, pg_database: str | None, settings: Any
) -> None:
    env = _env(tmp_path, pg_database)
    h = {
        "Authorization": f"Bearer {mint(env['ALERTS_JWT_SECRET'])}",
        "Content-Type": "application/fhir+json",
    }
    receiver = Receiver(fail_first=2)  # down at first, then two 503s, then up
    worker = start(["worker", "--concurrency", "2"], env, tmp_path / "worker.log")
    try:
        with api_server(env, tmp_path / "api.log") as base:
            fhir = f"{base}/fhir"
            r = httpx.post(f"{fhir}/Subscription", json=subscription(receiver.url), headers=h)
            assert r.status_code == 201 and r.json()["status"] == "active", r.text
            sid = r.json()["id"]
            r = httpx.post(fhir, json=back_pain_story("push-e2e"), headers=h, timeout=30)
            assert r.status_code == 200, r.text

            def alert() -> list[dict[str, Any]]:
                found = httpx.get(
                    f"{fhir}/CommunicationRequest", params={"patient": "push-e2e"}, headers=h
                ).json()
                return [e["resource"] for e in found.get("entry", [])]

            wait_until(lambda: len(alert()) == 1, timeout=90, what="the alert")
            time.sleep(1.5)  # attempts fail against a closed port meanwhile
            receiver.start()
            wait_until(lambda: len(receiver.accepted()) >= 1, timeout=60, what="delivery")
            [cr] = alert()
            # The acknowledgement: exactly one more notification.
            r = httpx.put(
                f"{fhir}/CommunicationRequest/{cr['id']}",
                json={**cr, "status": "completed"},
                headers=h,
            )
            assert r.status_code == 200, r.text
            wait_until(lambda: len(receiver.accepted()) >= 2, timeout=60, what="the ack")
            time.sleep(2)  # anything extra would arrive now
            got = receiver.accepted()
            assert sorted(_location(x.body) for x in got) == [
                f"CommunicationRequest/{cr['id']}/_history/1",
                f"CommunicationRequest/{cr['id']}/_history/2",
            ]
            for x in got:
                assert verify(SECRET, x.body, x.headers["x-fhir-alerts-signature"])
                assert x.headers["x-fhir-alerts-subscription"] == f"Subscription/{sid}"
            assert [x.answered for x in receiver.requests[:2]] == [503, 503]
            sub = httpx.get(f"{fhir}/Subscription/{sid}", headers=h).json()
            assert sub["status"] == "active"
    finally:
        kill(worker)
        receiver.stop()
    log = (tmp_path / "worker.log").read_text(errors="replace")
    assert "workers.tasks.deliver_notification" in log
    assert "attempt 1: retry" in log and ": success" in log
    # Ids only: neither the secret nor anything from the alert's text reaches the log.
    assert SECRET not in log and "back pain" not in log.lower()
