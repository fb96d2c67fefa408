"""Shared fixtures.

Default: every test runs on the embedded default (a fresh SQLite file, in-process worker), so a
newcomer's machine passes with nothing else installed. With ALERTS_TEST_SERVERS=1 (CI's second
run) the same tests use the real PostgreSQL, and the `server` tests start real Celery workers on
Redis; there a missing server is a failure, never a skip.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from service.auth import mint
from service.config import Settings

SHARED = Path(__file__).resolve().parents[2] / "shared"
SHARED_DATA = SHARED / "data"
VALIDATOR = SHARED / "tools" / "r4-validate" / "r4-validate"
FIXTURES = Path(__file__).resolve().parents[1] / "fhir_fixtures"

SERVERS = os.environ.get("ALERTS_TEST_SERVERS") == "1"
PG_ADMIN_URL = os.environ.get("ALERTS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("ALERTS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SERVERS:
        return
    skip = pytest.mark.skip(reason="needs ALERTS_TEST_SERVERS=1 (real PostgreSQL and Redis)")
    for item in items:
        if "server" in item.keywords:
            item.add_marker(skip)


def _psycopg_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str | None]:
    """A fresh PostgreSQL database for this test session (CI server run only)."""
    if not SERVERS:
        yield None
        return
    name = f"fhir_alerts_test_{uuid.uuid4().hex[:8]}"
    admin = create_engine(_psycopg_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:  # a connection error here fails the run, as it must
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with admin.connect() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :n AND pid <> pg_backend_pid()"
            ),
            {"n": name},
        )
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


def _reset_pg(url: str) -> None:
    from service.store.models import Base

    engine = create_engine(_psycopg_url(url))
    with engine.begin() as conn:
        names = ", ".join(t.name for t in Base.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def settings(tmp_path: Path, pg_database: str | None) -> Settings:
    s = Settings(
        data_dir=tmp_path / "data",
        database_url=pg_database,
        broker_url=None,
        jwt_secret="test-secret-" + uuid.uuid4().hex,
        relay_interval_seconds=0.05,
    )
    if pg_database:
        from service.store.migrate import upgrade

        upgrade(s.resolved_database_url)
        _reset_pg(pg_database)
    return s


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    from workers.embedded import build_app

    with TestClient(build_app(settings)) as c:
        yield c


@pytest.fixture
def token(settings: Settings) -> str:
    return mint(settings.signing_secret(), scope="system/*.*")


@pytest.fixture
def headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}


def wait_idle(client: Any, headers: dict[str, str], timeout: float = 30.0) -> None:
    """Wait until every stored write has been evaluated (the backlog is 0)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.get("/ops/backlog", headers=headers)
        assert r.status_code == 200, r.text
        if r.json()["pending"] == 0:
            return
        time.sleep(0.05)
    raise AssertionError("evaluations did not finish in time")
