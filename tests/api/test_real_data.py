"""Real third-party FHIR R4 data (../shared/data, never copied into the repo).

- All 124 Synthea patients (one transaction Bundle each, ~69,000 resources: urn:uuid
  references, Claim/ExplanationOfBenefit entries, U+200B in displays, `IU/L` units) are accepted
  whole, evaluated, and raise no alert (none has breast cancer).
- Every official HL7 R4 Observation and Condition example is accepted by PUT and read back
  exactly as sent, apart from meta.versionId/lastUpdated.
"""

from __future__ import annotations

import gzip
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.config import Settings
from service.store.db import session_factory, transaction
from service.store.models import PatientLock
from tests.conftest import SHARED_DATA, wait_idle

SYNTHEA = sorted((SHARED_DATA / "synthea-r4").glob("*.json.gz"))
HL7 = SHARED_DATA / "hl7-r4-examples"
HL7_EXAMPLES = sorted([*HL7.glob("Observation-*.json"), *HL7.glob("Condition-*.json")])
SKIPPED = "is not a type this service serves or evaluates"


def _total(client: TestClient, headers: dict[str, str], rtype: str, **params: str) -> int:
    r = client.get(
        f"/fhir/{rtype}", params={**params, "_count": "0", "_total": "accurate"}, headers=headers
    )
    assert r.status_code == 200, r.text
    return int(r.json()["total"])


@pytest.mark.slow
def test_synthea_bundles_are_accepted_evaluated_and_raise_no_alert(
    client: TestClient, headers: dict[str, str], settings: Settings
) -> None:
    assert len(SYNTHEA) == 124, f"expected the 124 Synthea bundles in {SHARED_DATA}"
    started = time.monotonic()
    entries = skipped = 0
    patients: set[str] = set()
    for path in SYNTHEA:
        r = client.post("/fhir", content=gzip.decompress(path.read_bytes()), headers=headers)
        assert r.status_code == 200, f"{path.name}: {r.status_code} {r.text[:2000]}"
        answer = r.json()
        assert answer["type"] == "transaction-response"
        for i, entry in enumerate(answer["entry"]):
            resp = entry["response"]
            assert resp["status"][:1] == "2", f"{path.name} entry[{i}]: {resp}"
            if "outcome" in resp:  # a type this service does not serve: skipped, by the rule
                assert resp["status"] == "200 OK"
                issue = resp["outcome"]["issue"][0]
                assert issue["severity"] == "information" and SKIPPED in issue["diagnostics"]
                skipped += 1
            elif resp["location"].startswith("Patient/"):
                patients.add(resp["location"].split("/")[1])
        entries += len(answer["entry"])
    stored = time.monotonic()
    wait_idle(client, headers, timeout=900)
    evaluated = time.monotonic()

    assert entries > 60_000 and skipped > 0 and len(patients) == 124
    # Every patient was evaluated (not just "the backlog is empty").
    with transaction(session_factory(settings.resolved_database_url)) as session:
        locks = {
            pid: at
            for pid, at in session.execute(select(PatientLock.patient_id, PatientLock.evaluated_at))
        }
    assert {p for p, at in locks.items() if at is not None} >= patients
    # No breast cancer, so no alert of any kind.
    assert _total(client, headers, "Flag") == 0
    assert _total(client, headers, "CommunicationRequest") == 0
    # The evaluated data is there and searchable: every patient has ALP results (6768-6).
    some = sorted(patients)[0]
    assert _total(client, headers, "Observation", patient=some, code="http://loinc.org|6768-6") > 0
    print(
        f"\nSynthea: {entries} entries ({skipped} skipped) from {len(SYNTHEA)} bundles; "
        f"stored in {stored - started:.1f} s, evaluated in {evaluated - stored:.1f} s"
    )


def _without_store_meta(resource: dict[str, Any]) -> dict[str, Any]:
    body = dict(resource)
    meta = {k: v for k, v in (body.pop("meta", None) or {}).items()}
    meta.pop("versionId", None)
    meta.pop("lastUpdated", None)
    if meta:
        body["meta"] = meta
    return body


def test_hl7_observation_and_condition_examples_round_trip(
    client: TestClient, headers: dict[str, str]
) -> None:
    assert len(HL7_EXAMPLES) >= 70, f"expected the HL7 R4 examples in {HL7}"
    failures: list[str] = []
    for path in HL7_EXAMPLES:
        raw = path.read_bytes()
        sent = orjson.loads(raw)
        url = f"/fhir/{sent['resourceType']}/{sent['id']}"
        r = client.put(url, content=raw, headers=headers)
        if r.status_code not in (200, 201):
            failures.append(f"{path.name}: PUT {r.status_code} {r.text[:500]}")
            continue
        back = client.get(url, headers=headers)
        assert back.status_code == 200, back.text
        served = back.json()
        assert served["meta"]["versionId"] == "1"
        if _without_store_meta(served) != _without_store_meta(sent):
            failures.append(f"{path.name}: read back differs from what was sent")
    assert not failures, "\n".join(failures)
    wait_idle(client, headers)


def test_real_data_paths_exist() -> None:
    """The shared data is where CI mounts it (a missing folder must fail, never skip)."""
    assert Path(SHARED_DATA).is_dir(), SHARED_DATA
