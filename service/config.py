"""One typed settings object shared by the API, the relay, the worker and the CLI.

Twelve-factor: everything comes from `ALERTS_*` environment variables with defaults that run a
complete service on one machine (SQLite file, in-process worker). Secrets are never defaulted to
a constant: an unset `ALERTS_JWT_SECRET` is generated once and kept in the data dir.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ALERTS_", extra="ignore")

    data_dir: Path = Path("./.fhir-alerts")
    database_url: str | None = None
    broker_url: str | None = None
    jwt_secret: str | None = None
    oncology_team: str = "CareTeam/oncology"

    # Request limits and paging.
    max_body_bytes: int = 8 * 1024 * 1024
    default_page_size: int = 50
    max_page_size: int = 1000

    # Pipeline: how often the relay looks for outbox rows, and when a dispatched evaluation
    # that never finished (a worker died) is handed out again.
    relay_interval_seconds: float = 0.5
    redispatch_after_seconds: float = 300.0
    # Kombu's Redis visibility timeout: an unacknowledged task is redelivered after this.
    broker_visibility_timeout: int = 600

    # Fault injection for crash-safety tests only: the worker holds each evaluation open this
    # long (inside its transaction) so a test can kill it mid-evaluation. Keep 0 in production.
    evaluation_delay_seconds: float = 0.0

    # `asOf` on writes (replay of historical test data). None = allowed only on the embedded
    # default (no broker), never silently in production.
    allow_as_of: bool | None = None

    # Web sign-in for the nurse worklist: "user:password" pairs, comma separated.
    worklist_users: str = Field(default="")

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            url = self.database_url
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
            elif url.startswith("postgres://"):
                url = "postgresql+psycopg://" + url.removeprefix("postgres://")
            return url
        return f"sqlite:///{(self.data_dir / 'alerts.db').resolve()}"

    @property
    def embedded(self) -> bool:
        """No broker configured: the serve process evaluates in-process."""
        return not self.broker_url

    @property
    def as_of_allowed(self) -> bool:
        return self.embedded if self.allow_as_of is None else self.allow_as_of

    def ensure_data_dir(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return self.data_dir

    def signing_secret(self) -> str:
        """The JWT secret: configured, or generated once into the data dir (mode 0600)."""
        if self.jwt_secret:
            return self.jwt_secret
        path = self.ensure_data_dir() / "jwt-secret"
        if not path.exists():
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process won the race; use its secret
                pass
            else:
                with os.fdopen(fd, "w") as fh:
                    fh.write(secrets.token_urlsafe(48))
        return path.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    return Settings()
