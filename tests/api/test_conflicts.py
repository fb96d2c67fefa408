"""Concurrent writers: a create that loses a race is a 409 OperationOutcome, never a 500."""

from __future__ import annotations

import threading
import time

from fastapi.testclient import TestClient

from service.config import Settings
from service.store import resources as store
from service.store.db import session_factory
from tests.builders import patient


def test_concurrent_create_of_the_same_id(
    client: TestClient, headers: dict[str, str], settings: Settings
) -> None:
    factory = session_factory(settings.resolved_database_url)
    postgres = not settings.resolved_database_url.startswith("sqlite")
    result: dict[str, object] = {}

    def put() -> None:
        r = client.put("/fhir/Patient/race", json=patient("race"), headers=headers)
        result["status"], result["body"] = r.status_code, r.json()

    session = factory()
    session.begin()
    try:
        # A first writer has created Patient/race but not committed yet.
        store.save(session, resource_type="Patient", resource_id="race", resource=patient("race"))
        racer = threading.Thread(target=put)
        racer.start()
        time.sleep(1.0)  # the racing PUT is now waiting on the database
        session.commit()
    finally:
        session.close()
    racer.join(timeout=60)
    if postgres:
        # PostgreSQL: the racer's insert hit the primary key once the first commit landed.
        assert result["status"] == 409, result
        body = result["body"]
        assert isinstance(body, dict) and body["resourceType"] == "OperationOutcome"
        assert body["issue"][0]["code"] == "conflict"
    else:
        # SQLite: writers are serialised (BEGIN IMMEDIATE), so the racer saw the row: update.
        assert result["status"] == 200, result
    current = client.get("/fhir/Patient/race", headers=headers).json()
    assert current["meta"]["versionId"] in ("1", "2")
