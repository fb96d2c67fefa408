"""Top-level conditional operations (`If-None-Exist`, `PUT Type?query`, `DELETE Type?query`),
consistent with the same operations inside Bundles, and the docs' tested example."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
from fastapi.testclient import TestClient

from tests.builders import patient

ROOT = Path(__file__).resolve().parents[2]


def _mrn(pid: str, mrn: str) -> dict[str, Any]:
    return {**patient(pid), "identifier": [{"system": "urn:test:mrn", "value": mrn}]}


def _ids(client: TestClient, headers: dict[str, str], query: str) -> list[str]:
    r = client.get(f"/fhir/{query}", headers=headers)
    assert r.status_code == 200, r.text
    return [e["resource"]["id"] for e in r.json().get("entry", [])]


def test_conditional_update(client: TestClient, headers: dict[str, str]) -> None:
    body = {k: v for k, v in _mrn("x", "cu-1").items() if k != "id"}
    created = client.put("/fhir/Patient?identifier=urn:test:mrn|cu-1", json=body, headers=headers)
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    assert created.headers["location"].endswith(f"/fhir/Patient/{pid}/_history/1")
    updated = client.put(
        "/fhir/Patient?identifier=urn:test:mrn|cu-1",
        json={**body, "gender": "other"},
        headers=headers,
    )
    assert updated.status_code == 200 and updated.json()["id"] == pid
    assert updated.json()["meta"]["versionId"] == "2"
    # One match, but the body names another resource: 400, nothing written.
    wrong = client.put(
        "/fhir/Patient?identifier=urn:test:mrn|cu-1", json={**body, "id": "other"}, headers=headers
    )
    assert wrong.status_code == 400
    # No match, and the body's id is taken by a resource the criteria do not match: 409.
    client.put("/fhir/Patient/taken", json=_mrn("taken", "cu-2"), headers=headers)
    taken = client.put(
        "/fhir/Patient?identifier=urn:test:mrn|cu-3", json=_mrn("taken", "cu-3"), headers=headers
    )
    assert taken.status_code == 409
    assert client.get("/fhir/Patient/taken", headers=headers).json()["meta"]["versionId"] == "1"
    # Several matches: 412.
    client.put("/fhir/Patient/twin", json=_mrn("twin", "cu-1"), headers=headers)
    several = client.put("/fhir/Patient?identifier=urn:test:mrn|cu-1", json=body, headers=headers)
    assert several.status_code == 412
    # If-Match applies to the matched resource.
    client.delete("/fhir/Patient/twin", headers=headers)
    stale = client.put(
        "/fhir/Patient?identifier=urn:test:mrn|cu-1",
        json=body,
        headers={**headers, "If-Match": 'W/"1"'},
    )
    assert stale.status_code == 412


def test_conditional_delete(client: TestClient, headers: dict[str, str]) -> None:
    client.put("/fhir/Patient/cd1", json=_mrn("cd1", "cd-1"), headers=headers)
    client.put("/fhir/Patient/cd2", json=_mrn("cd2", "cd-2"), headers=headers)
    client.put("/fhir/Patient/cd3", json=_mrn("cd3", "cd-2"), headers=headers)
    one = client.delete("/fhir/Patient?identifier=urn:test:mrn|cd-1", headers=headers)
    assert one.status_code == 204, one.text
    assert client.get("/fhir/Patient/cd1", headers=headers).status_code == 410
    none = client.delete("/fhir/Patient?identifier=urn:test:mrn|cd-1", headers=headers)
    assert none.status_code == 204
    several = client.delete("/fhir/Patient?identifier=urn:test:mrn|cd-2", headers=headers)
    assert several.status_code == 412
    assert sorted(_ids(client, headers, "Patient?identifier=urn:test:mrn|cd-2")) == ["cd2", "cd3"]
    assert client.delete("/fhir/Patient", headers=headers).status_code == 400
    bad = client.delete("/fhir/Patient?colour=blue", headers=headers)
    assert bad.status_code == 400
    assert client.delete("/fhir/Claim?identifier=x", headers=headers).status_code == 404


def test_capability_statement_lists_conditional_delete_that_works(
    client: TestClient, headers: dict[str, str]
) -> None:
    meta = client.get("/fhir/metadata").json()
    patient_cap = next(r for r in meta["rest"][0]["resource"] if r["type"] == "Patient")
    assert patient_cap["conditionalDelete"] == "single"
    assert patient_cap["conditionalUpdate"] is True and patient_cap["conditionalCreate"] is True
    client.put("/fhir/Patient/cap", json=_mrn("cap", "cap"), headers=headers)
    r = client.delete("/fhir/Patient?identifier=urn:test:mrn|cap", headers=headers)
    assert r.status_code == 204


def test_bundle_conditional_delete(client: TestClient, headers: dict[str, str]) -> None:
    client.put("/fhir/Patient/bd1", json=_mrn("bd1", "bd-1"), headers=headers)
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"request": {"method": "DELETE", "url": "Patient?identifier=urn:test:mrn|bd-1"}},
            {"request": {"method": "DELETE", "url": "Patient?identifier=urn:test:mrn|none"}},
        ],
    }
    r = client.post("/fhir", json=bundle, headers=headers)
    assert r.status_code == 200, r.text
    assert [e["response"]["status"] for e in r.json()["entry"]] == ["204 No Content"] * 2
    assert client.get("/fhir/Patient/bd1", headers=headers).status_code == 410


def _docs_example() -> dict[str, Any]:
    text = (ROOT / "docs" / "integrating.md").read_text()
    block = text.split("<!-- conditional-example:start -->", 1)[1]
    block = block.split("<!-- conditional-example:end -->", 1)[0]
    match = re.search(r"```json\n(.*?)```", block, re.S)
    assert match, "the conditional operations example is missing from docs/integrating.md"
    return orjson.loads(match.group(1))  # type: ignore[no-any-return]


def test_docs_conditional_example(client: TestClient, headers: dict[str, str]) -> None:
    """docs/integrating.md's example does what the text says: sent twice, one Patient, and
    each time the Conditions on that Patient."""
    example = _docs_example()
    first = client.post("/fhir", json=example, headers=headers)
    assert first.status_code == 200, first.text
    statuses = [e["response"]["status"] for e in first.json()["entry"]]
    assert statuses == ["201 Created", "201 Created", "201 Created"]
    again = client.post("/fhir", json=example, headers=headers)
    assert again.status_code == 200, again.text
    assert [e["response"]["status"] for e in again.json()["entry"]] == [
        "200 OK",
        "200 OK",
        "201 Created",
    ]
    patients = _ids(client, headers, "Patient")
    assert len(patients) == 1
    conditions = client.get("/fhir/Condition", headers=headers).json()["entry"]
    assert len(conditions) == 3
    assert {c["resource"]["subject"]["reference"] for c in conditions} == {f"Patient/{patients[0]}"}


def test_if_none_exist_forms_match_bundles(client: TestClient, headers: dict[str, str]) -> None:
    """The header takes the same criteria forms as `ifNoneExist` in a Bundle."""
    client.put("/fhir/Patient/ine", json=_mrn("ine", "ine-1"), headers=headers)
    body = {k: v for k, v in _mrn("x", "ine-1").items() if k != "id"}
    for criteria in (
        "identifier=urn:test:mrn|ine-1",
        "?identifier=urn:test:mrn|ine-1",
        "Patient?identifier=urn:test:mrn|ine-1",
    ):
        r = client.post("/fhir/Patient", json=body, headers={**headers, "If-None-Exist": criteria})
        assert r.status_code == 200 and r.json()["id"] == "ine", criteria
    for bad in ("Observation?identifier=urn:test:mrn|ine-1", "identifier=urn:test:mrn|ine 1"):
        r = client.post("/fhir/Patient", json=body, headers={**headers, "If-None-Exist": bad})
        assert r.status_code == 400, bad
    assert _ids(client, headers, "Patient") == ["ine"]
