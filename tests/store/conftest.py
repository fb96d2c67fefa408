"""Fixtures of the store tier: the database directly, through the service's own functions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from service.api.app import create_app
from service.config import Settings
from service.store.db import session_factory


@pytest.fixture
def factory(settings: Settings) -> Iterator[sessionmaker[Session]]:
    """A migrated database (SQLite, or PostgreSQL with ALERTS_TEST_SERVERS=1) with the store
    hook installed and no relay: outbox rows stay put for the test to read."""
    create_app(settings, start_relay=False)
    yield session_factory(settings.resolved_database_url)
