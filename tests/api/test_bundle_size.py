"""Issue 12: a Bundle's entries are capped (ALERTS_MAX_BUNDLE_ENTRIES, default 5000), counted
right after the body is parsed and before any entry is validated or planned, so a huge
Bundle costs one parse and a 413, never per-entry work or a response of its size."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from service.config import Settings
from tests.builders import calcium, entry, without_id
from tests.conftest import SHARED_DATA, R4Validator

SYNTHEA = SHARED_DATA / "synthea-r4"


def _bundle(n: int, btype: str = "transaction", valid: bool = True) -> dict[str, Any]:
    lab = without_id(calcium("o", "size-p"))
    if not valid:
        lab["status"] = "bogus"
    return {
        "resourceType": "Bundle",
        "type": btype,
        "entry": [entry("POST", "Observation", lab) for _ in range(n)],
    }


def _too_costly(r: Any, limit: int, count: int) -> dict[str, Any]:
    assert r.status_code == 413, r.text
    outcome: dict[str, Any] = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    issue = outcome["issue"][0]
    assert (issue["severity"], issue["code"]) == ("error", "too-costly")
    assert f"at most {limit} " in issue["diagnostics"]
    assert f"has {count} entries" in issue["diagnostics"]
    assert "ALERTS_MAX_BUNDLE_ENTRIES" in issue["diagnostics"]
    assert issue["expression"] == ["Bundle.entry"]
    return outcome


def test_a_10000_entry_bundle_is_refused_with_413_before_any_entry_is_judged(
    client: TestClient, headers: dict[str, str], r4_validate: R4Validator
) -> None:
    # Invalid entries: were they validated first, the answer would be a 422 naming entry 0.
    big = _bundle(10_000, valid=False)
    assert len(orjson.dumps(big)) < Settings.model_construct().max_body_bytes  # not a 413 by size
    r = client.post("/fhir", json=big, headers=headers)
    outcome = _too_costly(r, 5000, 10_000)
    r4_validate([outcome])
    big["type"] = "batch"
    _too_costly(client.post("/fhir", json=big, headers=headers), 5000, 10_000)
    found = client.get("/fhir/Observation?subject=Patient/size-p", headers=headers)
    assert found.status_code == 200 and "entry" not in found.json()


def test_the_default_limit_admits_the_largest_synthea_patient(
    client: TestClient, headers: dict[str, str]
) -> None:
    """Real exports are large: the biggest Synthea patient of ../shared/data is one transaction
    of 1,116 entries, and must go in whole; 5,001 entries are refused."""
    biggest = max(
        (orjson.loads(gzip.decompress(p.read_bytes())) for p in SYNTHEA.glob("*.json.gz")),
        key=lambda b: len(b["entry"]),
    )
    assert len(biggest["entry"]) > 1000
    r = client.post("/fhir", content=orjson.dumps(biggest), headers=headers)
    assert r.status_code == 200, r.text
    assert len(r.json()["entry"]) == len(biggest["entry"])
    _too_costly(client.post("/fhir", json=_bundle(5001), headers=headers), 5000, 5001)


@pytest.fixture
def small_client(settings: Settings) -> Iterator[TestClient]:
    from workers.embedded import build_app

    settings.max_bundle_entries = 3
    with TestClient(build_app(settings)) as c:
        yield c


def test_the_limit_is_configurable_and_covers_evaluate(
    small_client: TestClient, headers: dict[str, str]
) -> None:
    r = small_client.post("/fhir", json=_bundle(3), headers=headers)
    assert r.status_code == 200, r.text
    _too_costly(small_client.post("/fhir", json=_bundle(4), headers=headers), 3, 4)
    _too_costly(
        small_client.post("/fhir/$evaluate", json=_bundle(4, "collection"), headers=headers), 3, 4
    )


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTS_MAX_BUNDLE_ENTRIES", "25")
    assert Settings().max_bundle_entries == 25
    monkeypatch.setenv("ALERTS_MAX_BUNDLE_ENTRIES", "0")
    with pytest.raises(ValueError, match="max_bundle_entries"):
        Settings()
