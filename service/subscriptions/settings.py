"""Delivery settings (`ALERTS_DELIVERY_*`), shared by the relay and the delivery task.

Read when used rather than once per process, so a test (or an operator restarting nothing)
can shorten the back-off through the environment. Defaults: a first retry after 30 s, doubling
up to 6 h, 12 attempts (about 14.5 h of trying) before a delivery is given up and its
subscription is put in `error`.
"""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.config import Settings
from service.subscriptions.endpoint_policy import AllowList, parse_allow_list

ALLOWED_HOSTS_VARIABLE = "ALERTS_SUBSCRIPTION_ALLOWED_HOSTS"
DELIVERY_PREFIX = "ALERTS_DELIVERY_"


def _environment(name: str) -> str:
    """The variable as pydantic-settings reads it (names are not case-sensitive)."""
    return next((v for k, v in os.environ.items() if k.upper() == name), "")


def delivery_settings() -> DeliverySettings:
    """`DeliverySettings()` as the environment says now, built once per distinct environment:
    every attempt asks, and building the model each time cost about a millisecond."""
    snapshot = tuple(
        sorted(
            (k.upper(), v) for k, v in os.environ.items() if k.upper().startswith(DELIVERY_PREFIX)
        )
    )
    return _delivery_settings(snapshot)


@lru_cache(maxsize=16)
def _delivery_settings(_snapshot: tuple[tuple[str, str], ...]) -> DeliverySettings:
    return DeliverySettings()


class DeliverySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ALERTS_DELIVERY_", extra="ignore")

    base_delay_seconds: float = Field(default=30.0, gt=0)
    max_delay_seconds: float = Field(default=6 * 3600.0, gt=0)
    max_attempts: int = Field(default=12, ge=1)
    # One HTTP attempt (connect + send + answer).
    timeout_seconds: float = Field(default=10.0, gt=0)
    # A delivery handed to the broker and not attempted within this time is handed out again
    # (the message was lost, or the worker died before starting it).
    claim_seconds: float = Field(default=300.0, gt=0)
    # Public FHIR base written into notification Bundle.entry.fullUrl; unset = no fullUrl.
    fhir_base: str | None = None
    # How often topic subscriptions' heartbeats are checked (embedded thread, Celery beat); a
    # heartbeat goes out at most this long after its heartbeatPeriod is over. 0 = never.
    heartbeat_check_seconds: float = Field(default=5.0, ge=0)

    def retry_delay(self, failures: int) -> float:
        return retry_delay(failures, base=self.base_delay_seconds, cap=self.max_delay_seconds)

    @property
    def in_flight_seconds(self) -> float:
        """How long an attempt may be running before another worker may try again."""
        return self.timeout_seconds * 3 + 30


def allow_list(settings: Settings | None = None) -> AllowList:
    """The endpoint policy's exceptions: `ALERTS_SUBSCRIPTION_ALLOWED_HOSTS`
    (`Settings.subscription_allowed_hosts`), read when used like the delivery settings so the
    API judging a write and every worker judging a delivery apply the same exceptions, plus
    those of `settings`, the caller's own (passed by whoever composed it: the API app installs
    the write hook with its Settings, the embedded bootstrap passes them to the delivery task).
    Nothing is configured into a module global."""
    configured = settings.subscription_allowed_hosts if settings is not None else ""
    # The variable itself, not a whole `Settings()`: this runs for every delivery attempt, and
    # building Settings (every field, every validator) cost more than the attempt's SQL.
    environment = _environment(ALLOWED_HOSTS_VARIABLE)
    return _parsed_allow_list(f"{environment},{configured}")


@lru_cache(maxsize=64)
def _parsed_allow_list(text: str) -> AllowList:
    return parse_allow_list(text)


def retry_delay(failures: int, *, base: float, cap: float) -> float:
    """Seconds to wait after the `failures`-th failed attempt: base, 2*base, 4*base... <= cap."""
    if failures < 1:
        return 0.0
    return min(cap, base * 2.0 ** min(failures - 1, 62))
