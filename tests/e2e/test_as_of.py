"""The evaluation clock `asOf` on writes: where it is allowed, what it does, and that a server
with a broker (production shape) refuses it unless ALERTS_ALLOW_AS_OF=true."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.api.app import create_app
from service.config import Settings
from service.store.db import session_factory, transaction
from service.store.models import Outbox, PatientLock
from tests.builders import back_pain_story, lab, patient
from tests.builders import transaction as bundle_of
from tests.conftest import FIXTURES, wait_idle
from tests.e2e.live import Cli, Serve

AS_OF = "2026-06-01T12:00:00Z"
# Port 9 (discard) on loopback: a broker URL that is configured but never contacted, since
# these apps do not start the relay.
BROKER = "redis://127.0.0.1:9/0"
REFUSED = {
    "resourceType": "OperationOutcome",
    "issue": [
        {
            "severity": "error",
            "code": "forbidden",
            "diagnostics": "asOf is disabled on this server "
            "(set ALERTS_ALLOW_AS_OF=true on a test server)",
        }
    ],
}


def _broker_settings(settings: Settings, **changes: Any) -> Settings:
    return Settings(
        data_dir=settings.data_dir,
        database_url=settings.database_url,
        jwt_secret=settings.jwt_secret,
        broker_url=BROKER,
        **changes,
    )


@pytest.fixture
def broker_client(settings: Settings) -> Iterator[TestClient]:
    """The API as a production server runs it: a broker configured, asOf not enabled."""
    s = _broker_settings(settings)
    assert not s.embedded and not s.as_of_allowed
    with TestClient(create_app(s, start_relay=False)) as c:
        yield c


def _lock(settings: Settings, patient_id: str) -> PatientLock | None:
    with transaction(session_factory(settings.resolved_database_url)) as session:
        return session.get(PatientLock, patient_id)


def _outbox_patients(settings: Settings) -> set[str]:
    with transaction(session_factory(settings.resolved_database_url)) as session:
        return set(session.scalars(select(Outbox.patient_id)))


def test_as_of_is_refused_with_403_where_a_broker_is_configured(
    broker_client: TestClient, headers: dict[str, str], settings: Settings
) -> None:
    story = back_pain_story("ao1")
    r = broker_client.post("/fhir", params={"asOf": AS_OF}, json=story, headers=headers)
    assert r.status_code == 403
    assert r.json() == REFUSED
    obs = lab("ao1-ca", "ao1", "17861-6", 12.0, "mg/dL", "2026-05-25T09:00:00Z")
    r = broker_client.put(
        "/fhir/Observation/ao1-ca", params={"asOf": AS_OF}, json=obs, headers=headers
    )
    assert (r.status_code, r.json()) == (403, REFUSED)
    r = broker_client.post(
        "/fhir/Patient", params={"asOf": AS_OF}, json=patient("ao1"), headers=headers
    )
    assert (r.status_code, r.json()) == (403, REFUSED)
    # Nothing was stored, nothing will be evaluated.
    assert broker_client.get("/fhir/Patient/ao1", headers=headers).status_code == 404
    assert broker_client.get("/fhir/Observation/ao1-ca", headers=headers).status_code == 404
    assert _outbox_patients(settings) == set()


def test_a_write_without_as_of_is_unaffected_where_as_of_is_disabled(
    broker_client: TestClient, headers: dict[str, str], settings: Settings
) -> None:
    r = broker_client.post("/fhir", json=back_pain_story("ao2"), headers=headers)
    assert r.status_code == 200, r.text
    assert [e["response"]["status"] for e in r.json()["entry"]] == ["201 Created"] * 3
    assert broker_client.get("/fhir/Condition/ao2-bp", headers=headers).status_code == 200
    # Queued for the worker (the broker's), to be judged at the current time.
    assert _outbox_patients(settings) == {"ao2"}
    assert broker_client.get("/ops/backlog", headers=headers).json() == {"pending": 1}
    lock = _lock(settings, "ao2")
    assert lock is None or lock.as_of is None


def test_as_of_is_accepted_with_a_broker_when_allowed_explicitly(
    settings: Settings, headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALERTS_ALLOW_AS_OF", "true")
    s = _broker_settings(settings)
    assert s.as_of_allowed
    with TestClient(create_app(s, start_relay=False)) as c:
        r = c.post("/fhir", params={"asOf": AS_OF}, json=back_pain_story("ao3"), headers=headers)
        assert r.status_code == 200, r.text
    lock = _lock(settings, "ao3")
    assert lock is not None and lock.as_of == datetime(2026, 6, 1, 12, 0)


def test_as_of_can_be_disabled_on_the_embedded_default(
    settings: Settings, headers: dict[str, str]
) -> None:
    s = Settings(
        data_dir=settings.data_dir,
        database_url=settings.database_url,
        jwt_secret=settings.jwt_secret,
        allow_as_of=False,
    )
    assert s.embedded and not s.as_of_allowed
    with TestClient(create_app(s, start_relay=False)) as c:
        r = c.post("/fhir", params={"asOf": AS_OF}, json=back_pain_story("ao4"), headers=headers)
        assert (r.status_code, r.json()) == (403, REFUSED)


def test_as_of_judges_those_patients_at_that_time(
    client: TestClient, headers: dict[str, str]
) -> None:
    """The same story dated six years ago: with asOf at that time the back pain is new (urgent
    alert); judged now, it is old and raises nothing. A badly formed asOf is a 400."""
    then = datetime(2020, 6, 1, 12, 0, tzinfo=UTC)
    r = client.post(
        "/fhir",
        params={"asOf": "2020-06-01T12:00:00Z"},
        json=back_pain_story("ao5", then),
        headers=headers,
    )
    assert r.status_code == 200, r.text
    r = client.post("/fhir", json=back_pain_story("ao6", then), headers=headers)
    assert r.status_code == 200, r.text
    wait_idle(client, headers)

    def active(rtype: str, pid: str) -> list[dict[str, Any]]:
        bundle = client.get(
            f"/fhir/{rtype}", params={"patient": pid, "status": "active"}, headers=headers
        )
        return [e["resource"] for e in bundle.json().get("entry", [])]

    assert len(active("Flag", "ao5")) == 1
    assert [c["priority"] for c in active("CommunicationRequest", "ao5")] == ["urgent"]
    assert active("Flag", "ao6") == [] and active("CommunicationRequest", "ao6") == []

    r = client.post(
        "/fhir", params={"asOf": "2020-06-01"}, json=bundle_of(patient("ao7")), headers=headers
    )
    assert r.status_code == 400
    assert r.json()["issue"][0]["code"] == "invalid"


def test_replay_stops_with_the_servers_403_when_as_of_is_refused(
    settings: Settings, serve: Serve, run_cli: Cli
) -> None:
    with serve(_broker_settings(settings), embedded_worker=False) as server:
        r = run_cli(
            "replay",
            str(FIXTURES / "12-new-back-pain-snomed.json"),
            "--url",
            server.base_url,
            "--expect",
            str(FIXTURES / "12-new-back-pain-snomed.expect.json"),
        )
    assert r.returncode == 2, r.stdout + r.stderr
    err = " ".join(r.stderr.split())
    assert "the server refused the request (403): asOf is disabled on this server" in err
