"""Live-server fixtures of the e2e tier: a real server on a loopback port, for clients that
speak real HTTP (the `replay` command in a subprocess, fhirpy over aiohttp).

`live_server` runs `build_app(settings)` (the embedded default: in-process worker, the test's
own SQLite file, or PostgreSQL in the servers run) under uvicorn in a background thread and
yields `(base_url, token)`. `serve(settings)` does the same for a test that needs a server with
other settings (a broker configured, asOf allowed or not).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from service.auth import mint
from service.config import Settings

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class LiveServer:
    base_url: str  # the server root; the FHIR base is base_url + "/fhir"
    token: str

    def __iter__(self) -> Iterator[str]:  # so `url, token = live_server` works
        return iter((self.base_url, self.token))

    @property
    def fhir(self) -> str:
        return self.base_url + "/fhir"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": "application/fhir+json"}

    def wait_idle(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        pending = None
        while time.monotonic() < deadline:
            r = httpx.get(f"{self.base_url}/ops/backlog", headers=self.headers, timeout=10)
            assert r.status_code == 200, r.text
            pending = r.json()["pending"]
            if pending == 0:
                return
            time.sleep(0.05)
        raise AssertionError(f"evaluations did not finish in {timeout} s ({pending} pending)")


@contextmanager
def run_uvicorn(app: FastAPI) -> Iterator[str]:
    """Serve `app` on a free loopback port until the block ends; yields the root URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


Serve = Callable[..., AbstractContextManager[LiveServer]]


@pytest.fixture
def serve() -> Serve:
    @contextmanager
    def _serve(settings: Settings, *, embedded_worker: bool = True) -> Iterator[LiveServer]:
        if embedded_worker:
            from workers.embedded import build_app

            app = build_app(settings)
        else:
            from service.api.app import create_app

            app = create_app(settings, start_relay=False)
        token = mint(settings.signing_secret(), scope="system/*.*")
        with run_uvicorn(app) as url:
            yield LiveServer(url, token)

    return _serve


@pytest.fixture
def live_server(settings: Settings, serve: Serve) -> Iterator[LiveServer]:
    with serve(settings) as server:
        yield server


Cli = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def run_cli(settings: Settings) -> Cli:
    """Run the real `fhir-alerts` command line in a subprocess (the installed script when there
    is one, else the same entry point through `python -m service.cli`), configured like the
    test's server (same data dir and JWT secret), so its default token is one the server
    accepts."""

    def _run(
        *args: str, env: dict[str, str] | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        script = Path(sys.executable).with_name("fhir-alerts")
        command = [str(script)] if script.exists() else [sys.executable, "-m", "service.cli"]
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTS_")}
        full_env.update(
            {
                "COLUMNS": "200",
                "PYTHONPATH": str(ROOT),
                "ALERTS_DATA_DIR": str(settings.data_dir),
                "ALERTS_JWT_SECRET": settings.signing_secret(),
            }
        )
        full_env.update(env or {})
        return subprocess.run(
            [*command, *args],
            cwd=ROOT,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return _run
