"""Processes for the benchmarks: start a command in its own process group, wait until it
answers, measure the resident memory of that whole group, stop only that group; plus a scratch
PostgreSQL database and a flushed Redis database for the production shape.

Each command gets its own session (process group), so the memory figure covers every process it
forks (uvicorn, Celery's prefork children) and stopping it never touches anything else.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import psycopg
import redis

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log_path(name: str) -> Path:
    """Where the output of a started process goes (kept after the run, for post-mortems)."""
    return Path(tempfile.gettempdir()) / f"bench-pipeline-{name}.log"


@contextmanager
def started(
    cmd: Sequence[str], env: Mapping[str, str], name: str, cwd: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `cmd` in a new process group for the duration of the block, then stop that group."""
    with log_path(name).open("wb") as log:
        proc = subprocess.Popen(
            list(cmd),
            env=dict(env),
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            stop_group(proc)


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the leader (uvicorn and Celery then stop their own children gracefully), then
    SIGKILL whatever is left of its process group after 20 s or once the leader is gone."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(20)
    with suppress(ProcessLookupError):  # raised when the whole group has already ended
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(5)


def wait_answering(url: str, proc: subprocess.Popen[bytes], name: str, limit_s: float = 90) -> None:
    """Block until `url` answers below 500; fail loudly if the process dies or never answers."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited with {proc.returncode}; see {log_path(name)}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{name} did not answer {url} within {limit_s:.0f} s; see {log_path(name)}")


def group_rss_mb(pgid: int) -> float:
    """Resident memory (MB) of every live process in process group `pgid`."""
    total_kb = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            # fields after "(comm)": state, ppid, pgrp, ...; comm may contain spaces or ")"
            if int(stat[stat.rfind(")") + 2 :].split()[2]) != pgid:
                continue
            for line in Path(f"/proc/{entry}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue  # the process ended while we looked
    return total_kb / 1024


def total_rss_mb(procs: Sequence[subprocess.Popen[bytes]]) -> float:
    return sum(group_rss_mb(p.pid) for p in procs)


class PeakRss:
    """Samples the resident memory of some process groups in a thread, keeping the highest sum
    seen: the figure a single large request would push the service to."""

    def __init__(self, procs: Sequence[subprocess.Popen[bytes]], every_s: float = 0.1) -> None:
        self._procs = list(procs)
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self.peak_mb = 0.0

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, total_rss_mb(self._procs))
            self._stop.wait(self._every_s)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, total_rss_mb(self._procs))


@contextmanager
def scratch_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for the block (dropped after, even on failure)."""
    name = f"bench_pipeline_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'drop database if exists "{name}" with (force)')


@contextmanager
def flushed_redis(db: int) -> Iterator[str]:
    """The URL of Redis database `db` on 127.0.0.1, emptied before and after the block (never
    database 0, which the test suite uses)."""
    if db == 0:
        raise SystemExit("--redis-db 0 is the test suite's; pick another")
    url = f"redis://127.0.0.1:6379/{db}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()
