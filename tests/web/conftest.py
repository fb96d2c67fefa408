"""Worklist fixtures: the shared `settings` with two configured nurses."""

from __future__ import annotations

import pytest

from service.config import Settings

USERS = {"nurse": "correct horse battery", "charge": "pa:ss:word"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    users = ",".join(f"{u}:{p}" for u, p in USERS.items())
    return settings.model_copy(update={"worklist_users": users})
