"""Subscription fixtures: the test receivers listen on 127.0.0.1, which the endpoint policy
refuses by default; these tests use the documented exception mechanism to allow it."""

from __future__ import annotations

import pytest

from service.config import Settings

ALLOWED = "127.0.0.1"


@pytest.fixture(autouse=True)
def _allow_loopback_receivers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTS_SUBSCRIPTION_ALLOWED_HOSTS", ALLOWED)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"subscription_allowed_hosts": ALLOWED})
