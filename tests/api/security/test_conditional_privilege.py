"""Conditional operations never tell a token more than its scopes allow (issue 10): a
create-only token does not read records through If-None-Exist, a create-only conditional PUT
does not reveal whether a record exists, and deleting by criteria needs search rights."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from service.auth import mint
from service.config import Settings
from tests.builders import patient

SECRET_NAME = "Confidential-Family-Name"
CRITERIA = "identifier=urn:test:mrn|priv-1"


def _headers(settings: Settings, scope: str) -> dict[str, str]:
    token = mint(settings.signing_secret(), scope=scope)
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}


def _existing(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    body = {
        **patient("priv"),
        "identifier": [{"system": "urn:test:mrn", "value": "priv-1"}],
        "name": [{"family": SECRET_NAME}],
    }
    assert client.put("/fhir/Patient/priv", json=body, headers=headers).status_code == 201
    return body


def _new_body() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:test:mrn", "value": "priv-1"}],
        "gender": "female",
    }


def test_create_only_conditional_create_does_not_return_the_record(
    client: TestClient, headers: dict[str, str], settings: Settings
) -> None:
    _existing(client, headers)
    create_only = _headers(settings, "system/Patient.c")
    for r in (
        client.post(
            "/fhir/Patient", json=_new_body(), headers={**create_only, "If-None-Exist": CRITERIA}
        ),
        client.post(f"/fhir/Patient?{CRITERIA}", json=_new_body(), headers=create_only),
    ):
        assert r.status_code == 200, r.text
        assert SECRET_NAME not in r.text and r.content == b""
        assert r.headers["location"].endswith("/fhir/Patient/priv/_history/1")
    # A token that may read gets the resource, as before.
    full = client.post(
        "/fhir/Patient", json=_new_body(), headers={**headers, "If-None-Exist": CRITERIA}
    )
    assert full.status_code == 200 and full.json()["name"][0]["family"] == SECRET_NAME
    # Inside a Bundle the answer carries the location only, never the resource.
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": _new_body(),
                "request": {"method": "POST", "url": "Patient", "ifNoneExist": CRITERIA},
            }
        ],
    }
    r = client.post("/fhir", json=bundle, headers=create_only)
    assert r.status_code == 200, r.text
    assert SECRET_NAME not in r.text and "resource" not in r.json()["entry"][0]


def test_create_only_conditional_update_does_not_reveal_existence(
    client: TestClient, headers: dict[str, str], settings: Settings
) -> None:
    _existing(client, headers)
    create_only = _headers(settings, "system/Patient.c")
    matching = client.put(f"/fhir/Patient?{CRITERIA}", json=_new_body(), headers=create_only)
    other = client.put(
        "/fhir/Patient?identifier=urn:test:mrn|nobody", json=_new_body(), headers=create_only
    )
    assert matching.status_code == other.status_code == 403
    assert matching.json() == other.json()
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": _new_body(), "request": {"method": "PUT", "url": ""}}],
    }
    answers = []
    for criteria in (CRITERIA, "identifier=urn:test:mrn|nobody"):
        bundle["entry"][0]["request"]["url"] = f"Patient?{criteria}"
        answers.append(client.post("/fhir", json=bundle, headers=create_only))
    assert [a.status_code for a in answers] == [403, 403]
    assert answers[0].json() == answers[1].json()
    ids = [
        e["resource"]["id"] for e in client.get("/fhir/Patient", headers=headers).json()["entry"]
    ]
    assert ids == ["priv"]
    # Create and update rights together may do it.
    writer = _headers(settings, "system/Patient.cu")
    assert (
        client.put(f"/fhir/Patient?{CRITERIA}", json=_new_body(), headers=writer).status_code == 200
    )


def test_delete_by_criteria_needs_search_rights(
    client: TestClient, headers: dict[str, str], settings: Settings
) -> None:
    _existing(client, headers)
    delete_only = _headers(settings, "system/Patient.d")
    r = client.delete(f"/fhir/Patient?{CRITERIA}", headers=delete_only)
    assert r.status_code == 403
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"request": {"method": "DELETE", "url": f"Patient?{CRITERIA}"}}],
    }
    assert client.post("/fhir", json=bundle, headers=delete_only).status_code == 403
    assert client.get("/fhir/Patient/priv", headers=headers).status_code == 200
    # By id, delete rights suffice; by criteria, search and delete together.
    searcher = _headers(settings, "system/Patient.sd")
    assert client.delete(f"/fhir/Patient?{CRITERIA}", headers=searcher).status_code == 204
    assert client.get("/fhir/Patient/priv", headers=headers).status_code == 410
