"""Fault trials with real processes on a private PostgreSQL cluster and a private Redis that
the tests start, break and remove (tests/e2e/servers.py), never the machine's shared servers:
a PostgreSQL stop/start under load, a Redis restart that loses the queued messages, and a
worker SIGKILLed mid-evaluation. Every trial ends with 0 lost and 0 duplicated alerts."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.auth import mint
from tests.builders import back_pain_story
from tests.e2e.processes import api_server, kill, start, wait_for_log
from tests.e2e.servers import PrivatePostgres, PrivateRedis

pytestmark = pytest.mark.server


def _env(tmp_path: Path, pg: PrivatePostgres, rd: PrivateRedis, **extra: str) -> dict[str, str]:
    env = {
        "ALERTS_DATA_DIR": str(tmp_path / "data"),
        "ALERTS_DATABASE_URL": pg.url,
        "ALERTS_BROKER_URL": rd.url,
        "ALERTS_JWT_SECRET": "faults-" + uuid.uuid4().hex,
        "ALERTS_RELAY_INTERVAL_SECONDS": "0.2",
    }
    env.update(extra)
    return env


def _headers(env: dict[str, str]) -> dict[str, str]:
    tok = mint(env["ALERTS_JWT_SECRET"])
    return {"Authorization": f"Bearer {tok}", "Content-Type": "application/fhir+json"}


def _wait_backlog(base: str, h: dict[str, str], timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        r = httpx.get(f"{base}/ops/backlog", headers=h, timeout=5)
        if r.status_code == 200 and r.json()["pending"] == 0:
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"backlog did not drain within {timeout:.0f} s")


def _alert_counts(base: str, h: dict[str, str]) -> dict[str, tuple[int, int]]:
    """patient id -> (Flags, CommunicationRequests), over every alert stored."""
    out: dict[str, list[int]] = {}
    for i, rtype in enumerate(("Flag", "CommunicationRequest")):
        url: str | None = f"{base}/fhir/{rtype}?_count=1000"
        while url:
            bundle = httpx.get(url, headers=h, timeout=30).json()
            for e in bundle.get("entry", []):
                ref = e["resource"]["subject"]["reference"]
                out.setdefault(ref.removeprefix("Patient/"), [0, 0])[i] += 1
            url = next(
                (lk["url"] for lk in bundle.get("link", []) if lk["relation"] == "next"), None
            )
    return {p: (f, c) for p, (f, c) in out.items()}


def _post_patients(base: str, h: dict[str, str], pids: list[str]) -> None:
    entries = [e for pid in pids for e in back_pain_story(pid)["entry"]]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    r = httpx.post(f"{base}/fhir", json=bundle, headers=h, timeout=60)
    assert r.status_code == 200, r.text


def test_messages_lost_in_a_redis_restart_are_dispatched_again_within_30_s(
    tmp_path: Path, private_postgres: PrivatePostgres, private_redis: PrivateRedis
) -> None:
    """Redis restarted without persistence used to leave the lost evaluations waiting for the
    stale-dispatch timeout (288 s in a trial for 100 alerts) while the workers sat idle."""
    env = _env(tmp_path, private_postgres, private_redis)
    h = _headers(env)
    pids = [f"redis-{i:02d}" for i in range(20)]
    with api_server(env, tmp_path / "api.log") as base:
        _post_patients(base, h, pids)
        deadline = time.monotonic() + 20
        while private_redis.queued_patients() < len(pids):  # handed to the broker; no worker
            assert time.monotonic() < deadline, "the relay did not publish"
            time.sleep(0.1)
        private_redis.stop()
        ready = httpx.get(f"{base}/readyz", timeout=10)
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"database": "ok", "broker": "unavailable"}
        private_redis.start()  # empty: every queued evaluation is lost
        worker = start(["worker", "--concurrency", "2"], env, tmp_path / "worker.log")
        try:
            took = _wait_backlog(base, h, timeout=30)
            counts = _alert_counts(base, h)
        finally:
            kill(worker)
    assert took < 30
    assert {p: counts.get(p) for p in pids} == {p: (1, 1) for p in pids}


def test_postgres_stop_start_under_load_answers_503_and_loses_nothing(
    tmp_path: Path, private_postgres: PrivatePostgres, private_redis: PrivateRedis
) -> None:
    """A PostgreSQL stop used to give 500 "Internal server error" (missing from the access log)
    and reset connections, and /healthz said ok throughout."""
    env = _env(tmp_path, private_postgres, private_redis)
    h = _headers(env)
    api_log = tmp_path / "api.log"
    worker = start(["worker", "--concurrency", "2"], env, tmp_path / "worker.log")
    answers: list[tuple[str, int, str | None]] = []  # patient, status, Retry-After
    errors: list[str] = []
    done = threading.Event()
    try:
        with api_server(env, api_log) as base:

            def load() -> None:
                # One keep-alive connection: a 503 must leave it usable.
                with httpx.Client(base_url=base, headers=h, timeout=30) as client:
                    i = 0
                    while not done.is_set():
                        pid = f"pg-{i:03d}"
                        i += 1
                        try:
                            r = client.post("/fhir", json=back_pain_story(pid))
                        except httpx.HTTPError as exc:
                            errors.append(f"{pid}: {type(exc).__name__}")
                            continue
                        answers.append((pid, r.status_code, r.headers.get("retry-after")))
                        if r.status_code == 503:
                            assert r.json()["issue"][0]["code"] == "transient"
                        time.sleep(0.05)

            loader = threading.Thread(target=load)
            loader.start()
            time.sleep(2)
            assert httpx.get(f"{base}/readyz", timeout=10).status_code == 200
            private_postgres.stop()
            time.sleep(4)
            ready_down = httpx.get(f"{base}/readyz", timeout=10)
            live_down = httpx.get(f"{base}/healthz", timeout=10)
            private_postgres.start()
            time.sleep(4)
            done.set()
            loader.join(timeout=60)
            assert httpx.get(f"{base}/readyz", timeout=10).status_code == 200

            statuses = [s for _, s, _ in answers]
            assert errors == []
            assert set(statuses) <= {200, 503}, statuses
            assert 503 in statuses and statuses[-1] == 200
            assert all(ra and ra.isdigit() for _, s, ra in answers if s == 503)
            assert ready_down.status_code == 503
            assert ready_down.json()["checks"]["database"] == "unavailable"
            assert live_down.status_code == 200

            # The client retries what was refused; nothing was stored by a refused write.
            refused = [p for p, s, _ in answers if s == 503]
            for pid in refused:
                r = httpx.post(f"{base}/fhir", json=back_pain_story(pid), headers=h, timeout=30)
                assert r.status_code == 200, r.text
            _wait_backlog(base, h, timeout=60)
            counts = _alert_counts(base, h)
        log = api_log.read_text(errors="replace")
        assert log.count("POST /fhir 503 ") == len(refused)
        assert " 500 " not in log
        pids = sorted({p for p, _, _ in answers})
        assert {p: counts.get(p) for p in pids} == {p: (1, 1) for p in pids}
    finally:
        done.set()
        kill(worker)


def test_worker_sigkilled_mid_evaluation_loses_nothing(
    tmp_path: Path, private_postgres: PrivatePostgres, private_redis: PrivateRedis
) -> None:
    env = _env(
        tmp_path,
        private_postgres,
        private_redis,
        ALERTS_REDISPATCH_AFTER_SECONDS="6",
        ALERTS_BROKER_VISIBILITY_TIMEOUT="6",
    )
    h = _headers(env)
    slow_log = tmp_path / "slow-worker.log"
    slow = start(
        ["worker", "--concurrency", "1"], {**env, "ALERTS_EVALUATION_DELAY_SECONDS": "30"}, slow_log
    )
    with api_server(env, tmp_path / "api.log") as base:
        try:
            _post_patients(base, h, ["kill-1"])
            wait_for_log(slow_log, "workers.tasks.evaluate_patient", timeout=60)
            time.sleep(2)  # inside the evaluation's transaction now
        finally:
            kill(slow)  # SIGKILL the worker and its pool processes
        assert httpx.get(f"{base}/ops/backlog", headers=h).json()["pending"] == 1
        fresh = start(["worker", "--concurrency", "1"], env, tmp_path / "fresh-worker.log")
        try:
            _wait_backlog(base, h, timeout=45)
            counts: dict[str, Any] = _alert_counts(base, h)
        finally:
            kill(fresh)
    assert counts == {"kill-1": (1, 1)}
