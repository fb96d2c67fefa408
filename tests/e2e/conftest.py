"""Fixtures of the end-to-end tests: private PostgreSQL and Redis servers for fault trials."""

from tests.e2e.servers import private_postgres, private_redis

__all__ = ["private_postgres", "private_redis"]
