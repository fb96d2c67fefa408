"""Shared fixtures.

Default: every test runs on the embedded default (a fresh SQLite file, in-process worker), so a
newcomer's machine passes with nothing else installed. With ALERTS_TEST_SERVERS=1 (CI's second
run) the same tests use the real PostgreSQL, and the `server` tests start real Celery workers on
Redis; there a missing server is a failure, never a skip.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from service.auth import mint
from service.config import Settings

SHARED = Path(__file__).resolve().parents[2] / "shared"
SHARED_DATA = SHARED / "data"
VALIDATOR = Path(
    os.environ.get("R4_VALIDATE", str(SHARED / "tools" / "r4-validate" / "r4-validate"))
)
FIXTURES = Path(__file__).resolve().parents[1] / "fhir_fixtures"

SERVERS = os.environ.get("ALERTS_TEST_SERVERS") == "1"
# `slow` tests (the Synthea corpus) are deselected unless asked for: ALERTS_TEST_SLOW=1 (CI) or
# an explicit `-m` expression that names them (`-m slow`, `-m ""` runs everything).
SLOW = os.environ.get("ALERTS_TEST_SLOW") == "1"
PG_ADMIN_URL = os.environ.get("ALERTS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("ALERTS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _deselect_slow(config, items)
    if SERVERS:
        return
    skip = pytest.mark.skip(reason="needs ALERTS_TEST_SERVERS=1 (real PostgreSQL and Redis)")
    for item in items:
        if "server" in item.keywords:
            item.add_marker(skip)


def _deselect_slow(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep the default local run quick: `slow` tests run only when CI (ALERTS_TEST_SLOW=1),
    the caller's own `-m` expression or a `path::name` on the command line asks for them."""
    if SLOW or config.getoption("markexpr", ""):
        return
    named = [_node_id(config, arg) for arg in config.args if "::" in arg]
    slow = [
        item
        for item in items
        if "slow" in item.keywords and not any(item.nodeid.startswith(n) for n in named)
    ]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if item not in slow]


def _node_id(config: pytest.Config, arg: str) -> str:
    """A command-line test id (`path::name`, the path relative or absolute) as a node id, so a
    slow test named on the command line still runs."""
    path, _, rest = arg.partition("::")
    relative = Path(os.path.relpath(Path(path).resolve(), config.rootpath)).as_posix()
    return f"{relative}::{rest}"


@dataclass(frozen=True)
class Validation:
    """What r4-validate said about one run: its exit code, output and pass/fail counts."""

    returncode: int
    stdout: str
    stderr: str
    passed: int
    failed: int

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.failed == 0

    def report(self, hide: str | None = None) -> str:
        """The tail of the output; `hide` drops lines containing it (a bad entry also fails its
        Bundle with dozens of oneOf lines, so callers may show only the entries' own lines)."""
        lines = [line for line in self.stdout.splitlines() if not hide or hide not in line]
        return "\n".join(lines[-60:]) + self.stderr[-2000:]


class R4Validator:
    """Runs the shared offline r4-validate over resources (written as one JSON array, so every
    Bundle's entries are checked too) or over files as they are."""

    def __init__(self, workdir: Path) -> None:
        self._workdir = workdir

    def run(self, items: Sequence[dict[str, Any]] | Sequence[Path]) -> Validation:
        assert VALIDATOR.exists(), f"r4-validate not found at {VALIDATOR} (set R4_VALIDATE)"
        assert shutil.which("node"), "r4-validate needs node"
        assert items, "nothing to validate"
        if all(isinstance(i, Path) for i in items):
            files = [str(i) for i in items]
        else:
            path = self._workdir / f"resources-{uuid.uuid4().hex}.json"
            path.write_bytes(orjson.dumps(list(items)))
            files = [str(path)]
        run = subprocess.run(
            [str(VALIDATOR), *files], capture_output=True, text=True, timeout=600, check=False
        )
        counts = re.search(r"(\d+) passed, (\d+) failed", run.stdout)
        assert counts, f"r4-validate gave no summary: {run.stdout[-2000:]}{run.stderr[-2000:]}"
        return Validation(run.returncode, run.stdout, run.stderr, int(counts[1]), int(counts[2]))

    def __call__(
        self, items: Sequence[dict[str, Any]] | Sequence[Path], *, hide: str | None = None
    ) -> Validation:
        """Validate and assert that everything passed; returns the result for further checks."""
        result = self.run(items)
        assert result.ok, result.report(hide)
        return result


@pytest.fixture(scope="session")
def r4_validate(tmp_path_factory: pytest.TempPathFactory) -> R4Validator:
    """The one way tests validate FHIR: `r4_validate(resources)` asserts all pass,
    `r4_validate.run(resources)` returns the result (to check that a bad one is refused)."""
    return R4Validator(tmp_path_factory.mktemp("r4-validate"))


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
