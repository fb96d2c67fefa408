"""Worklist fixtures: the shared `settings` with two configured nurses."""

from __future__ import annotations

import pytest

from service.config import Settings
from tests.api.web.support import users_setting

USERS = {"nurse": "correct horse battery", "charge": "pa:ss:word"}
USERS_SETTING = users_setting(USERS)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"worklist_users": USERS_SETTING})
