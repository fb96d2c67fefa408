"""Scale-out on one PostgreSQL and one Redis: several API processes (`serve --workers 2` beside
a second `serve`) and two Celery worker processes. Every write is evaluated exactly once and
every patient gets exactly one Flag and one CommunicationRequest.

Before the relays claimed their rows, two API processes read the same due outbox rows and both
dispatched them (765 and 782 evaluation tasks for 400 patients in a trial).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.processes import free_port, kill, start, wait_http
from tests.e2e.servers import PrivatePostgres
from tests.e2e.test_celery_worker import _env, _headers
from tests.e2e.test_faults import _alert_counts, _post_patients, _wait_backlog

pytestmark = pytest.mark.server

PATIENTS = 500
PER_BUNDLE = 10


@contextmanager
def _serve(env: dict[str, str], log: Path, workers: int = 1) -> Iterator[str]:
    port = free_port()
    proc = start(["serve", "--port", str(port), "--workers", str(workers)], env, log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/healthz")
        yield base
    finally:
        kill(proc, signal.SIGTERM)


def _evaluations(base: str, h: dict[str, str]) -> float:
    text = httpx.get(f"{base}/metrics", headers=h, timeout=30).text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "fhir_alerts_evaluations_total"
    )


def test_two_apis_and_two_workers_evaluate_each_patient_once(
    tmp_path: Path, pg_database: str | None, settings: Any
) -> None:
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    # One metrics directory for every process of this "host": /metrics of any API sums them.
    env = _env(tmp_path, pg_database, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    h = _headers(env)
    workers = [
        start(["worker", "--concurrency", "2"], env, tmp_path / f"worker{i}.log") for i in (1, 2)
    ]
    try:
        with (
            _serve(env, tmp_path / "api-a.log", workers=2) as api_a,
            _serve(env, tmp_path / "api-b.log") as api_b,
        ):
            pids = [f"scale-{i:03d}" for i in range(PATIENTS)]
            groups = [pids[i : i + PER_BUNDLE] for i in range(0, PATIENTS, PER_BUNDLE)]
            with ThreadPoolExecutor(max_workers=4) as pool:
                for done in pool.map(
                    lambda n: _post_patients((api_a, api_b)[n % 2], h, groups[n]),
                    range(len(groups)),
                ):
                    assert done is None
            _wait_backlog(api_a, h, timeout=240)
            counts = _alert_counts(api_b, h)
            evaluated_a, evaluated_b = _evaluations(api_a, h), _evaluations(api_b, h)
            backlog = httpx.get(f"{api_b}/ops/backlog", headers=h, timeout=10).json()
    finally:
        for w in workers:
            kill(w)
    assert backlog == {"pending": 0}
    assert counts == {p: (1, 1) for p in pids}
    # One evaluation per patient: no outbox row was handed out twice.
    assert evaluated_a == evaluated_b == PATIENTS


def test_a_worker_host_serves_its_own_evaluation_metrics(
    tmp_path: Path, pg_database: str | None, settings: Any
) -> None:
    """Evaluations happen in the workers: a worker host sharing no metrics directory with an
    API process serves them itself (ALERTS_WORKER_METRICS_PORT)."""
    worker_dir = tmp_path / "worker-metrics"
    worker_dir.mkdir()
    env = _env(tmp_path, pg_database)
    h = _headers(env)
    port = free_port()
    worker_env = {
        **env,
        "PROMETHEUS_MULTIPROC_DIR": str(worker_dir),
        "ALERTS_WORKER_METRICS_PORT": str(port),
    }
    w = start(["worker", "--concurrency", "2"], worker_env, tmp_path / "worker.log")
    try:
        with _serve(env, tmp_path / "api.log") as api:
            _post_patients(api, h, ["wm-1", "wm-2"])
            _wait_backlog(api, h, timeout=60)
            wait_http(f"http://127.0.0.1:{port}/metrics")
            page = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
            api_evaluations = _evaluations(api, h)
    finally:
        kill(w)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(page)
        for s in family.samples
    }
    assert samples[("fhir_alerts_evaluations_total", (("result", "alerted"),))] == 2
    assert samples[("fhir_alerts_evaluation_seconds_count", ())] == 2
    assert samples[("fhir_alerts_write_to_alert_seconds_count", ())] == 2
    assert api_evaluations == 0  # the API process evaluated nothing itself


def test_processes_starting_together_on_a_fresh_database_migrate_it_once(
    private_postgres: PrivatePostgres,
) -> None:
    """API processes and workers each run the schema upgrade at start; on a fresh database
    they used to race to create the same tables, and the losers died at start."""
    import threading

    from sqlalchemy import create_engine, text

    from service.store.migrate import upgrade

    url = private_postgres.url.replace("postgresql://", "postgresql+psycopg://", 1)
    errors: list[str] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        barrier.wait()
        try:
            upgrade(url)
        except Exception as exc:  # collected for the assertion below
            errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "the upgrades deadlocked"
    assert errors == []
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    engine.dispose()
