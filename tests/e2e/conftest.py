"""Fixtures of the end-to-end tests: private PostgreSQL and Redis servers for fault trials, and
real servers on loopback ports (`live_server`, `serve`) and the real command line (`run_cli`)."""

from tests.e2e.live import live_server, run_cli, serve
from tests.e2e.servers import private_postgres, private_redis

__all__ = ["live_server", "private_postgres", "private_redis", "run_cli", "serve"]
