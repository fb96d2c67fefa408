"""Helpers over a running test app."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker


def session_factory_of(client: TestClient) -> sessionmaker[Session]:
    """The app's own session factory, for reading and writing its database beside the API."""
    return client.app.state.session_factory  # type: ignore[attr-defined,no-any-return]
