"""End to end with real processes: the API publishes to Redis, Celery workers evaluate into
PostgreSQL. Runs in CI's server pass (ALERTS_TEST_SERVERS=1), where missing servers fail."""

from __future__ import annotations

import random
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from service.auth import mint
from tests.builders import back_pain_story
from tests.conftest import REDIS_URL
from tests.e2e.processes import api_server, kill, start

pytestmark = pytest.mark.server


def _env(tmp_path: Path, pg_database: str | None, **extra: str) -> dict[str, str]:
    assert pg_database, "the server run needs PostgreSQL"
    db = random.randint(1, 15)
    broker = REDIS_URL.rsplit("/", 1)[0] + f"/{db}"
    redis.Redis.from_url(broker).flushdb()  # a connection error fails the test, as it must
    env = {
        "ALERTS_DATA_DIR": str(tmp_path / "data"),
        "ALERTS_DATABASE_URL": pg_database,
        "ALERTS_BROKER_URL": broker,
        "ALERTS_JWT_SECRET": "e2e-" + uuid.uuid4().hex,
        "ALERTS_RELAY_INTERVAL_SECONDS": "0.2",
    }
    env.update(extra)
    return env


def _headers(env: dict[str, str]) -> dict[str, str]:
    tok = mint(env["ALERTS_JWT_SECRET"])
    return {"Authorization": f"Bearer {tok}", "Content-Type": "application/fhir+json"}


def _wait_backlog(base: str, h: dict[str, str], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(f"{base}/ops/backlog", headers=h, timeout=5).json()["pending"] == 0:
            return
        time.sleep(0.2)
    raise AssertionError("backlog did not drain")


def _alerts(base: str, h: dict[str, str], pid: str) -> tuple[list[Any], list[Any]]:
    flags = httpx.get(f"{base}/fhir/Flag", params={"patient": pid}, headers=h).json()
    crs = httpx.get(f"{base}/fhir/CommunicationRequest", params={"patient": pid}, headers=h).json()
    return [e["resource"] for e in flags.get("entry", [])], [
        e["resource"] for e in crs.get("entry", [])
    ]


def test_real_worker_raises_one_alert_and_reposting_adds_none(
    tmp_path: Path, pg_database: str | None, settings: Any
) -> None:
    env = _env(tmp_path, pg_database)
    h = _headers(env)
    w1 = start(["worker", "--concurrency", "2"], env, tmp_path / "worker1.log")
    w2 = start(["worker", "--concurrency", "2"], env, tmp_path / "worker2.log")
    try:
        with api_server(env, tmp_path / "api.log") as base:
            story = back_pain_story("e2e1")
            r = httpx.post(f"{base}/fhir", json=story, headers=h, timeout=30)
            assert r.status_code == 200, r.text
            _wait_backlog(base, h)
            flags, crs = _alerts(base, h, "e2e1")
            assert [f["status"] for f in flags] == ["active"]
            assert [c["status"] for c in crs] == ["active"]
            assert crs[0]["priority"] == "urgent"
            codes = {c["code"] for rc in crs[0]["reasonCode"] for c in rc["coding"]}
            assert codes == {"new-back-pain"}
            # The same transaction again, many times at once across two workers: no new alerts.
            for _ in range(5):
                assert (
                    httpx.post(f"{base}/fhir", json=story, headers=h, timeout=30).status_code == 200
                )
            _wait_backlog(base, h)
            flags, crs = _alerts(base, h, "e2e1")
            assert len(flags) == 1 and len(crs) == 1
            assert flags[0]["meta"]["versionId"] == "1"
    finally:
        kill(w1)
        kill(w2)


def test_worker_ignores_celery_cli_variables_in_the_environment(
    tmp_path: Path, pg_database: str | None, settings: Any
) -> None:
    """Celery's own CLI reads APP, BROKER_URL, LOADER... as options; an unrelated variable of
    that name in a deployment's environment used to stop `fhir-alerts worker` at start."""
    env = _env(tmp_path, pg_database)
    h = _headers(env)
    hostile = {
        "APP": "not.a.celery.app",
        "BROKER_URL": "redis://127.0.0.1:1/0",
        "LOADER": "not.a.loader",
        "CONFIG_MODULE": "not.a.module",
    }
    w = start(["worker", "--concurrency", "1"], {**env, **hostile}, tmp_path / "worker.log")
    try:
        with api_server(env, tmp_path / "api.log") as base:
            r = httpx.post(f"{base}/fhir", json=back_pain_story("e2e3"), headers=h, timeout=30)
            assert r.status_code == 200, r.text
            _wait_backlog(base, h)
            flags, crs = _alerts(base, h, "e2e3")
            assert [f["status"] for f in flags] == ["active"]
            assert len(crs) == 1
        assert w.poll() is None, (tmp_path / "worker.log").read_text(errors="replace")[-2000:]
    finally:
        kill(w)
