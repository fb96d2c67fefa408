"""Private PostgreSQL and Redis servers for fault tests, which stop and restart them: never the
machine's shared servers. Each lives in a temporary directory on a free port of 127.0.0.1 and
is removed by the fixture that started it."""

from __future__ import annotations

import base64
import glob
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, text

from tests.e2e.processes import free_port


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    assert path, f"PostgreSQL's {name} is not installed"
    return path


def _as_owner() -> list[str]:
    """initdb and the server refuse to run as root: run them as `postgres` then."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


@dataclass
class PrivatePostgres:
    root: Path
    port: int

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/alerts"

    def _ctl(self, *args: str, timeout: float = 60) -> None:
        subprocess.run(
            [*_as_owner(), _pg_bin("pg_ctl"), "-D", str(self.data), "-w", "-t", "50", *args],
            check=True,
            timeout=timeout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._ctl("-l", str(self.root / "server.log"), "-o", opts, "start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "stop")


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    root = Path(tempfile.mkdtemp(prefix="fhir-alerts-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    pg = PrivatePostgres(root, free_port())
    try:
        subprocess.run(
            [*_as_owner(), _pg_bin("initdb"), "-D", str(pg.data), "-A", "trust", "-U", "postgres"],
            check=True,
            timeout=120,
            stdout=subprocess.DEVNULL,
        )
        pg.start()
        admin = create_engine(
            f"postgresql+psycopg://postgres@127.0.0.1:{pg.port}/postgres",
            isolation_level="AUTOCOMMIT",
        )
        with admin.connect() as conn:
            conn.execute(text("CREATE DATABASE alerts"))
        admin.dispose()
        yield pg
    finally:
        with suppress(Exception):
            pg.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class PrivateRedis:
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """No persistence: a restart loses every queued message, as in the fault trial."""
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with suppress(redis.ConnectionError):
                if redis.Redis(port=self.port, socket_timeout=1).ping():
                    return
            time.sleep(0.05)
        raise AssertionError("private Redis did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def queued(self, queue: str = "evaluate") -> int:
        return int(redis.Redis(port=self.port, socket_timeout=2).llen(queue))

    def queued_patients(self, queue: str = "evaluate") -> int:
        """Patients waiting in `queue`: one per `evaluate_patient` message, one per item of a
        batched `evaluate_patients` message (kombu's JSON envelope, base64 body)."""
        count = 0
        for raw in redis.Redis(port=self.port, socket_timeout=2).lrange(queue, 0, -1):
            message = json.loads(raw)
            args = json.loads(base64.b64decode(message["body"]))[0]
            batched = message["headers"]["task"] == "workers.tasks.evaluate_patients"
            count += len(args[0]) if batched else 1
        return count


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    r = PrivateRedis(free_port(), tmp_path / "redis.log")
    r.start()
    try:
        yield r
    finally:
        r.stop()
