"""Worker cost of evaluating one patient with 5,000 stored Observations, and whether it stays
flat as other patients' data grows.

    .venv/bin/python bench/evaluate.py [--observations 5000] [--others 0,50000,200000]
    ALERTS_DATABASE_URL=postgresql://postgres@127.0.0.1/test .venv/bin/python bench/evaluate.py

The patient's Observations all lie inside the rules' look-back window (the worst case: every
one is loaded and judged): calcium, albumin, ALP and pain scores over the last year. The time
is the whole `evaluate_patient` call: one transaction, lock, load, rules, episode decision,
writes. Median of repeated runs, after a warm-up.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from service.config import Settings
from service.store import resources as store
from service.store.db import session_factory, transaction
from service.store.migrate import upgrade
from service.subscriptions import hook as subscription_hook
from workers.evaluation import evaluate_patient
from workers.runtime import tune_gc

LOINC = "http://loinc.org"
NOW = datetime.now(UTC)


def _obs(pid: str, i: int, code: str, value: float, unit: str, when: datetime) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "valueQuantity": {
            "value": value,
            "unit": unit,
            "system": "http://unitsofmeasure.org",
            "code": unit,
        },
    }


def patient_data(pid: str, n: int) -> list[tuple[str, str, dict[str, Any]]]:
    out: list[tuple[str, str, dict[str, Any]]] = [
        (
            "Condition",
            f"{pid}-bc",
            {
                "resourceType": "Condition",
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "254837009"}]},
                "subject": {"reference": f"Patient/{pid}"},
                "onsetDateTime": "2020-01-01",
            },
        )
    ]
    kinds = [
        ("17861-6", 9.4, "mg/dL"),
        ("1751-7", 4.1, "g/dL"),
        ("6768-6", 95.0, "U/L"),
        ("72514-3", 2.0, "{score}"),
    ]
    for i in range(n):
        code, base, unit = kinds[i % len(kinds)]
        when = NOW - timedelta(minutes=int(365 * 24 * 60 * (i + 1) / (n + 1)))
        value = base * (1 + 0.02 * ((i * 7919) % 11 - 5) / 5)
        out.append(("Observation", f"{pid}-o{i}", _obs(pid, i, code, round(value, 2), unit, when)))
    return out


def load(settings: Settings, rows: list[tuple[str, str, dict[str, Any]]]) -> None:
    subscription_hook.install()  # this process writes resources, as the API and worker do
    factory = session_factory(settings.resolved_database_url)
    for start in range(0, len(rows), 2000):
        with transaction(factory) as session:
            for rtype, rid, res in rows[start : start + 2000]:
                store.save(
                    session, resource_type=rtype, resource_id=rid, resource=res, current=None
                )


def checkpoint(settings: Settings) -> None:
    """Fold SQLite's write-ahead log into the database after a bulk load, as the automatic
    checkpoints of steady operation would; otherwise the first evaluations pay for it."""
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        engine = create_engine(url)
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()


def measure(settings: Settings, pid: str, runs: int) -> tuple[float, float]:
    """(median CPU ms, median wall ms). CPU time of this process is the worker's own cost
    (SQLite runs in-process; PostgreSQL's server time is excluded) and is far less disturbed
    by other load on the machine than wall time."""
    factory = session_factory(settings.resolved_database_url)
    evaluate_patient(factory, pid, settings=settings)  # warm-up; opens the episode if any
    tune_gc()  # as a worker process does at start (workers/runtime.py)
    cpu, wall = [], []
    for _ in range(runs):
        c, w = time.process_time(), time.perf_counter()
        evaluate_patient(factory, pid, settings=settings)
        cpu.append((time.process_time() - c) * 1000)
        wall.append((time.perf_counter() - w) * 1000)
    return statistics.median(cpu), statistics.median(wall)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--observations", type=int, default=5000)
    ap.add_argument("--others", default="0,50000,200000")
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    url = os.environ.get("ALERTS_DATABASE_URL")
    with tempfile.TemporaryDirectory() as tmp:
        db_url = None
        admin = None
        if url:
            name = f"bench_{uuid.uuid4().hex[:8]}"
            admin = create_engine(
                url.replace("postgresql://", "postgresql+psycopg://", 1),
                isolation_level="AUTOCOMMIT",
            )
            with admin.connect() as c:
                c.execute(text(f'CREATE DATABASE "{name}"'))
            db_url = url.rsplit("/", 1)[0] + "/" + name
        settings = Settings(data_dir=Path(tmp), database_url=db_url, jwt_secret="b" * 40)
        upgrade(settings.resolved_database_url)
        load(settings, patient_data("bench-p", args.observations))
        backend = "PostgreSQL" if db_url else "SQLite"
        print(f"{backend}; patient with {args.observations} Observations in the look-back window")
        stored_others = 0
        for target in [int(x) for x in args.others.split(",")]:
            i = 0
            rows: list[tuple[str, str, dict[str, Any]]] = []
            while stored_others + len(rows) < target:
                rows += patient_data(f"other-{stored_others + len(rows)}-{i}", 500)
                i += 1
            if rows:
                load(settings, rows)
                stored_others += len(rows)
            checkpoint(settings)
            cpu, wall = measure(settings, "bench-p", args.runs)
            print(
                f"  other patients' resources: {stored_others:8d}   evaluate_patient: "
                f"{cpu:6.1f} ms CPU, {wall:6.1f} ms wall (medians of {args.runs})"
            )
        if admin is not None and db_url is not None:
            from sqlalchemy.orm import close_all_sessions

            close_all_sessions()
            session_factory(settings.resolved_database_url).kw["bind"].dispose()
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{db_url.rsplit("/", 1)[1]}"'))


if __name__ == "__main__":
    main()
