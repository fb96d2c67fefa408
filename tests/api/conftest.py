"""API fixtures shared across the API test folders."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from service.config import Settings


@pytest.fixture
def still(settings: Settings) -> Iterator[TestClient]:
    """The app with no relay running: the test hands deliveries out itself."""
    from workers.embedded import build_app

    with TestClient(build_app(settings, start_relay=False)) as c:
        yield c
