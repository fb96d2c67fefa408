"""Operations endpoints: liveness, readiness, `/metrics`, and how a database outage answers.

The outage is real: the SQLite database's directory is removed under a running app, so every
connection attempt fails in the driver, as it does while PostgreSQL is stopped (the server run
also stops a real PostgreSQL: tests/e2e/test_faults.py).
"""

from __future__ import annotations

import logging
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from service.config import Settings
from tests.builders import back_pain_story
from tests.conftest import wait_idle
from workers.embedded import build_app


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _metrics(client: TestClient, headers: dict[str, str]) -> dict[Any, float]:
    r = client.get("/metrics", headers={"Authorization": headers["Authorization"]})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return _samples(r.text)


def test_liveness_and_readiness_are_open_and_ok(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "checks": {"database": "ok"}}


def test_metrics_need_a_token(client: TestClient) -> None:
    r = client.get("/metrics")
    assert r.status_code == 401
    assert r.json()["resourceType"] == "OperationOutcome"


def test_metrics_accept_the_static_scrape_token(tmp_path: Path) -> None:
    """Bearer JWTs are capped in lifetime; a scraper can use ALERTS_METRICS_TOKEN instead."""
    scrape = "scrape-" + uuid.uuid4().hex
    settings = Settings(
        data_dir=tmp_path / "data",
        broker_url=None,
        jwt_secret="test-secret-" + uuid.uuid4().hex,
        metrics_token=scrape,
    )
    with TestClient(build_app(settings)) as client:
        ok = client.get("/metrics", headers={"Authorization": f"Bearer {scrape}"})
        assert ok.status_code == 200
        assert "fhir_alerts_outbox_pending_patients 0.0" in ok.text
        wrong = client.get("/metrics", headers={"Authorization": f"Bearer {scrape}x"})
        assert wrong.status_code == 401
        # The scrape token is good for /metrics only.
        assert (
            client.get("/ops/backlog", headers={"Authorization": f"Bearer {scrape}"}).status_code
            == 401
        )


def test_metrics_follow_writes_evaluations_and_alerts(
    client: TestClient, headers: dict[str, str]
) -> None:
    before = _metrics(client, headers)
    r = client.post("/fhir", json=back_pain_story("m1"), headers=headers)
    assert r.status_code == 200, r.text
    wait_idle(client, headers)
    assert client.get("/fhir/Patient/m1", headers=headers).status_code == 200
    assert client.get("/fhir/Patient/no-such-patient", headers=headers).status_code == 404
    after = _metrics(client, headers)

    def delta(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    # Requests by route template and status: never the raw path (it carries patient ids).
    assert delta("fhir_alerts_http_requests_total", method="POST", route="/fhir", status="200") == 1
    routes = {dict(k[1]).get("route") for k in after if k[0] == "fhir_alerts_http_requests_total"}
    assert not any(r and "m1" in r for r in routes)
    read = "/fhir/{rtype}/{rid}"
    assert delta("fhir_alerts_http_requests_total", method="GET", route=read, status="404") == 1, (
        sorted(routes)
    )
    # Resources stored by type (the story's Patient and two Conditions; the alert's writes).
    assert delta("fhir_alerts_resources_stored_total", type="Patient") == 1
    assert delta("fhir_alerts_resources_stored_total", type="Condition") == 2
    assert delta("fhir_alerts_resources_stored_total", type="Flag") == 1
    # The evaluation: counted, timed, and the delay from the write to the alert.
    assert delta("fhir_alerts_evaluations_total", result="alerted") == 1
    assert delta("fhir_alerts_evaluation_seconds_count") >= 1
    assert delta("fhir_alerts_write_to_alert_seconds_count") == 1
    assert 0 < delta("fhir_alerts_write_to_alert_seconds_sum") < 30
    # State read from the database: nothing pending, one open urgent alert.
    assert _value(after, "fhir_alerts_outbox_pending_patients") == 0
    assert _value(after, "fhir_alerts_outbox_oldest_age_seconds") == 0
    assert _value(after, "fhir_alerts_open_alerts", priority="urgent") == 1
    assert _value(after, "fhir_alerts_open_alerts", priority="stat") == 0


def test_outbox_depth_and_age_are_reported(client: TestClient, headers: dict[str, str]) -> None:
    from datetime import timedelta

    from service.store.db import transaction
    from service.store.models import Outbox
    from service.store.resources import utcnow

    factory = client.app.state.session_factory  # type: ignore[attr-defined]
    relay = client.app.state.relay  # type: ignore[attr-defined]
    relay.stop()  # hold the pipeline so the rows stay
    with transaction(factory) as session:
        old = utcnow() - timedelta(seconds=120)
        session.add_all(
            [Outbox(patient_id=p, created_at=old) for p in ("depth-1", "depth-1", "depth-2")]
        )
    samples = _metrics(client, headers)
    assert _value(samples, "fhir_alerts_outbox_pending_patients") == 2
    assert _value(samples, "fhir_alerts_outbox_rows") == 3
    assert 119 < _value(samples, "fhir_alerts_outbox_oldest_age_seconds") < 200


def test_an_unhandled_error_is_a_500_in_the_access_log_and_the_metrics(
    client: TestClient, headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """A 500 used to be missing from the access log: the exception passed through it."""
    app: Any = client.app

    def explode() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/test-only/explode", explode)
    before = _metrics(client, headers)
    with caplog.at_level(logging.INFO, logger="fhir_alerts.access"):
        r = client.get("/test-only/explode")
    assert r.status_code == 500
    assert r.json()["resourceType"] == "OperationOutcome"
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "fhir_alerts.access"]
    assert any(line.startswith("GET /test-only/explode 500 ") for line in lines), lines
    after = _metrics(client, headers)
    labels = {"method": "GET", "route": "/test-only/explode", "status": "500"}
    assert (
        _value(after, "fhir_alerts_http_requests_total", **labels)
        - _value(before, "fhir_alerts_http_requests_total", **labels)
        == 1
    )


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    """Its own SQLite database in both test runs: the test removes it."""
    db_dir = tmp_path / "db"
    return Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{db_dir / 'alerts.db'}",
        broker_url=None,
        jwt_secret="test-secret-" + uuid.uuid4().hex,
        relay_interval_seconds=0.05,
    )


def test_a_database_outage_answers_503_with_retry_after_and_is_logged(
    sqlite_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """It used to be a 500 "Internal server error" (141 of them in a 17 s PostgreSQL stop),
    missing from the access log, and /healthz said ok with the database down."""
    from service.auth import mint
    from service.store.db import session_factory

    app = build_app(sqlite_settings)
    tok = mint(sqlite_settings.signing_secret(), scope="system/*.*")
    h = {"Authorization": f"Bearer {tok}", "Content-Type": "application/fhir+json"}
    with TestClient(app) as client:
        assert client.post("/fhir", json=back_pain_story("out1"), headers=h).status_code == 200
        wait_idle(client, h)
        app.state.relay.stop()
        session_factory(sqlite_settings.resolved_database_url).kw["bind"].dispose()
        shutil.rmtree(Path(sqlite_settings.resolved_database_url.removeprefix("sqlite:///")).parent)

        with caplog.at_level(logging.INFO, logger="fhir_alerts.access"):
            write = client.post("/fhir", json=back_pain_story("out2"), headers=h)
            read = client.get("/fhir/Patient/out1", headers=h)
        for r in (write, read):
            assert r.status_code == 503, r.text
            assert r.headers["Retry-After"].isdigit()
            issue = r.json()["issue"][0]
            assert r.json()["resourceType"] == "OperationOutcome"
            assert (issue["severity"], issue["code"]) == ("error", "transient")
            assert r.headers.get("connection") != "close"
        lines = [rec.getMessage() for rec in caplog.records if rec.name == "fhir_alerts.access"]
        assert any(line.startswith("POST /fhir 503 ") for line in lines), lines
        assert any(line.startswith("GET /fhir/Patient/out1 503 ") for line in lines), lines

        # Liveness stays "process alive"; readiness says the database is not there.
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {"status": "unavailable", "checks": {"database": "unavailable"}}
