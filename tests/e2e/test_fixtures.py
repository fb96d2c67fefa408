"""Every scenario in fhir_fixtures/ through the real HTTP API and worker, through `$evaluate`
and through `fhir-alerts evaluate`: all three must give exactly the expected alerts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service.cli import app as cli
from service.replay.expectations import actual_alerts, diff, load_expectations
from tests.conftest import FIXTURES, wait_idle

BUNDLES = sorted(p for p in FIXTURES.glob("*.json") if not p.name.endswith(".expect.json"))


def _expect_path(bundle: Path) -> Path:
    return bundle.with_name(bundle.name.removesuffix(".json") + ".expect.json")


def _split(resources: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    flags = [r for r in resources if r.get("resourceType") == "Flag"]
    requests = [r for r in resources if r.get("resourceType") == "CommunicationRequest"]
    return flags, requests


def _read_all(
    client: TestClient, headers: dict[str, str], rtype: str, patients: list[str]
) -> list[dict[str, Any]]:
    ids = ",".join(p.removeprefix("Patient/") for p in patients)
    r = client.get(f"/fhir/{rtype}", params={"patient": ids, "_count": "1000"}, headers=headers)
    assert r.status_code == 200, r.text
    return [e["resource"] for e in r.json().get("entry", [])]


def test_there_are_fixtures() -> None:
    assert len(BUNDLES) >= 40


@pytest.mark.parametrize("bundle_path", BUNDLES, ids=[p.stem for p in BUNDLES])
def test_fixture_through_api_worker_dry_run_and_cli(
    bundle_path: Path, client: TestClient, headers: dict[str, str]
) -> None:
    expected = load_expectations(_expect_path(bundle_path))
    as_of = expected.single_as_of
    assert as_of
    patients = sorted(expected.patients)
    body = bundle_path.read_bytes()

    # 1. Live: the HTTP API stores it, the worker evaluates it (as of the fixture's time).
    r = client.post(f"/fhir?asOf={as_of}", content=body, headers=headers)
    assert r.status_code == 200, r.text
    wait_idle(client, headers)
    live = actual_alerts(
        _read_all(client, headers, "Flag", patients),
        _read_all(client, headers, "CommunicationRequest", patients),
    )
    assert diff(expected, live) == []

    # 2. Dry run over HTTP: same result, nothing stored.
    r = client.post(f"/fhir/$evaluate?asOf={as_of}", content=body, headers=headers)
    assert r.status_code == 200, r.text
    dry = [e["resource"] for e in r.json().get("entry", [])]
    assert diff(expected, actual_alerts(*_split(dry))) == []

    # 3. The offline CLI: same result again.
    result = CliRunner().invoke(cli, ["evaluate", str(bundle_path), "--as-of", as_of])
    assert result.exit_code == 0, result.output
    offline = [e["resource"] for e in orjson.loads(result.stdout).get("entry", [])]
    assert diff(expected, actual_alerts(*_split(offline))) == []


def test_dry_run_stores_nothing(client: TestClient, headers: dict[str, str]) -> None:
    body = BUNDLES[0].read_bytes()
    r = client.post("/fhir/$evaluate?asOf=2026-06-01T12:00:00Z", content=body, headers=headers)
    assert r.status_code == 200 and r.json()["entry"]
    for rtype in ("Patient", "Condition", "Flag", "CommunicationRequest"):
        assert client.get(f"/fhir/{rtype}", headers=headers).json()["total"] == 0
    assert client.get("/ops/backlog", headers=headers).json() == {"pending": 0}
