"""Transaction and batch Bundles."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.builders import back_pain, breast_cancer, days_ago, lab, patient, transaction


def test_transaction_rewrites_urn_uuid_references(
    client: TestClient, headers: dict[str, str]
) -> None:
    b = transaction(
        patient("t1"), lab("t1-ca", "t1", "17861-6", 9.5, "mg/dL", days_ago(2)), method="POST"
    )
    b["entry"][1]["resource"]["subject"] = {"reference": "urn:uuid:t1"}
    r = client.post("/fhir", json=b, headers=headers)
    assert r.status_code == 200, r.text
    resp = r.json()
    assert resp["type"] == "transaction-response"
    assert [e["response"]["status"] for e in resp["entry"]] == ["201 Created", "201 Created"]
    pid = resp["entry"][0]["response"]["location"].split("/")[1]
    oid = resp["entry"][1]["response"]["location"].split("/")[1]
    obs = client.get(f"/fhir/Observation/{oid}", headers=headers).json()
    assert obs["subject"]["reference"] == f"Patient/{pid}"


def test_transaction_rolls_back_on_a_bad_entry(client: TestClient, headers: dict[str, str]) -> None:
    bad = lab("t2-ca", "t2", "17861-6", 9.5, "mg/dL", days_ago(2), status="not-a-status")
    b = transaction(patient("t2"), breast_cancer("t2-bc", "t2", days_ago(400)), bad)
    r = client.post("/fhir", json=b, headers=headers)
    assert r.status_code == 422
    issue = r.json()["issue"][0]
    assert issue["expression"][0] == "Bundle.entry[2]"
    assert client.get("/fhir/Patient/t2", headers=headers).status_code == 404
    assert client.get("/fhir/Condition/t2-bc", headers=headers).status_code == 404
    assert client.get("/ops/backlog", headers=headers).json() == {"pending": 0}


def test_transaction_rolls_back_on_a_conflict(client: TestClient, headers: dict[str, str]) -> None:
    client.put("/fhir/Patient/t3", json=patient("t3"), headers=headers)
    b = transaction(patient("t3b"), patient("t3"))
    b["entry"][1]["request"]["ifMatch"] = 'W/"7"'
    r = client.post("/fhir", json=b, headers=headers)
    assert r.status_code == 412
    assert client.get("/fhir/Patient/t3b", headers=headers).status_code == 404


def test_batch_answers_entry_by_entry(client: TestClient, headers: dict[str, str]) -> None:
    b = transaction(
        patient("b1"), lab("b1-x", "b1", "17861-6", 9.5, "mg/dL", days_ago(1), status="bogus")
    )
    b["type"] = "batch"
    b["entry"].append({"request": {"method": "GET", "url": "Patient/b1"}})
    b["entry"].append({"request": {"method": "GET", "url": "Patient?identifier=urn:test:mrn|b1"}})
    r = client.post("/fhir", json=b, headers=headers)
    assert r.status_code == 200
    entries = r.json()["entry"]
    assert r.json()["type"] == "batch-response"
    assert entries[0]["response"]["status"] == "201 Created"
    assert entries[1]["response"]["status"] == "422"
    assert entries[1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert entries[2]["resource"]["id"] == "b1"
    assert entries[3]["resource"]["total"] == 1
    assert client.get("/fhir/Patient/b1", headers=headers).status_code == 200


def test_unserved_types_are_skipped_not_failed(client: TestClient, headers: dict[str, str]) -> None:
    b = transaction(patient("s1"), method="POST")
    b["entry"].append(
        {
            "fullUrl": "urn:uuid:claim-1",
            "resource": {"resourceType": "Claim", "status": "active"},
            "request": {"method": "POST", "url": "Claim"},
        }
    )
    r = client.post("/fhir", json=b, headers=headers)
    assert r.status_code == 200
    skipped = r.json()["entry"][1]["response"]
    assert skipped["status"] == "200 OK"
    assert skipped["outcome"]["issue"][0]["severity"] == "information"


def test_bundle_errors(client: TestClient, headers: dict[str, str]) -> None:
    r = client.post("/fhir", json={"resourceType": "Bundle", "type": "collection"}, headers=headers)
    assert r.status_code == 422
    r = client.post(
        "/fhir",
        json={
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{"resource": patient("x")}],
        },
        headers=headers,
    )
    assert r.status_code == 400
    r = client.post("/fhir", json=patient("x"), headers=headers)
    assert r.status_code == 422


def test_transaction_with_delete_and_conditional_update(
    client: TestClient, headers: dict[str, str]
) -> None:
    client.put("/fhir/Condition/d1", json=back_pain("d1", "pd", days_ago(1)), headers=headers)
    b = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"request": {"method": "DELETE", "url": "Condition/d1"}},
            {
                "resource": {**patient("cu"), "gender": "other"},
                "request": {"method": "PUT", "url": "Patient?identifier=urn:test:mrn|cu"},
            },
        ],
    }
    r = client.post("/fhir", json=b, headers=headers)
    assert r.status_code == 200, r.text
    assert client.get("/fhir/Condition/d1", headers=headers).status_code == 410
    assert (
        client.get("/fhir/Patient?identifier=urn:test:mrn|cu", headers=headers).json()["total"] == 1
    )
