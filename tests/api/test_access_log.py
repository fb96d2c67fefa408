"""The access log (service/api/access_log.py): one line per request, method, path, status and
duration; never the query string (it can carry patient identifiers); 500s logged once."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.builders import calcium, without_id

LINE = re.compile(r"^(GET|POST|PUT|DELETE|PATCH|HEAD) \S+ \d{3} \d+\.\dms$")


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "fhir_alerts.access"]


def test_each_answer_is_one_line_without_the_query_string(
    client: TestClient, headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="fhir_alerts.access"):
        created = client.post(
            "/fhir/Observation", json=without_id(calcium("o", "al-p")), headers=headers
        )
        assert created.status_code == 201
        search = client.get("/fhir/Patient?identifier=urn:mrn|SECRET-MRN-1", headers=headers)
        assert search.status_code == 200
        missing = client.get("/fhir/Observation/not-there", headers=headers)
        assert missing.status_code == 404
    lines = _lines(caplog)
    assert len(lines) == 3, lines
    assert all(LINE.match(line) for line in lines), lines
    assert lines[0].startswith("POST /fhir/Observation 201 ")
    assert lines[1].startswith("GET /fhir/Patient 200 ")
    assert lines[2].startswith("GET /fhir/Observation/not-there 404 ")
    assert not any("SECRET" in line or "identifier" in line for line in lines)


def test_an_unhandled_error_is_logged_once_as_500(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    app: Any = client.app

    def explode() -> None:
        raise RuntimeError("a bug with patient data in it")

    app.add_api_route("/test-only/explode-once", explode)
    with caplog.at_level(logging.INFO, logger="fhir_alerts.access"):
        assert client.get("/test-only/explode-once?mrn=X").status_code == 500
    lines = [line for line in _lines(caplog) if "explode-once" in line]
    assert len(lines) == 1, lines
    assert lines[0].startswith("GET /test-only/explode-once 500 ")
    assert "patient data" not in caplog.text
