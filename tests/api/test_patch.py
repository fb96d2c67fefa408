"""PATCH flavours: JSON Patch (RFC 6902) and JSON Merge Patch (RFC 7396, also as plain
application/json, which fhirpy sends); bad pointers and indexes are 4xx, never 500."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.builders import lab

JSON_PATCH = "application/json-patch+json"
MERGE = "application/merge-patch+json"


@pytest.fixture
def obs(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    body = lab("pt1", "pp", "17861-6", 9.5, "mg/dL", "2026-01-01T00:00:00Z")
    body["note"] = [{"text": "first"}, {"text": "second"}]
    r = client.put("/fhir/Observation/pt1", json=body, headers=headers)
    assert r.status_code == 201
    return body


def _patch(client: TestClient, headers: dict[str, str], body: Any, ctype: str, **extra: str) -> Any:
    return client.patch(
        "/fhir/Observation/pt1", json=body, headers={**headers, "Content-Type": ctype, **extra}
    )


def test_merge_patch(client: TestClient, headers: dict[str, str], obs: dict[str, Any]) -> None:
    r = _patch(client, headers, {"status": "amended", "note": None}, MERGE)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "amended" and "note" not in body
    assert body["meta"]["versionId"] == "2"
    assert body["valueQuantity"] == obs["valueQuantity"]  # untouched elements stay
    # Nested objects merge; the rest of valueQuantity stays.
    r = _patch(client, headers, {"valueQuantity": {"value": 10.1}}, MERGE)
    assert r.json()["valueQuantity"] == {**obs["valueQuantity"], "value": 10.1}
    # What fhirpy sends: a merge patch as application/json.
    r = _patch(client, headers, {"status": "final"}, "application/json")
    assert r.status_code == 200 and r.json()["status"] == "final"
    stored = client.get("/fhir/Observation/pt1", headers=headers).json()
    assert stored["status"] == "final" and stored["meta"]["versionId"] == "4"


def test_merge_patch_refusals(
    client: TestClient, headers: dict[str, str], obs: dict[str, Any]
) -> None:
    assert _patch(client, headers, {"status": "bogus"}, MERGE).status_code == 422
    assert _patch(client, headers, {"id": "other"}, MERGE).status_code == 400
    assert _patch(client, headers, {"resourceType": "Patient"}, MERGE).status_code == 400
    assert _patch(client, headers, "status", MERGE).status_code == 400
    assert (
        _patch(client, headers, {"status": "amended"}, MERGE, **{"If-Match": 'W/"7"'}).status_code
        == 412
    )
    deep: dict[str, Any] = {"x": 1}
    for _ in range(200):
        deep = {"a": deep}
    r = _patch(client, headers, {"extension": deep}, MERGE)
    assert r.status_code in (400, 422), r.text
    # Nothing of a refused patch is stored.
    assert client.get("/fhir/Observation/pt1", headers=headers).json()["meta"]["versionId"] == "1"
    # FHIRPath Patch (a Parameters resource) is not offered.
    assert (
        _patch(client, headers, {"status": "amended"}, "application/fhir+json").status_code == 415
    )


def test_json_patch_operations(
    client: TestClient, headers: dict[str, str], obs: dict[str, Any]
) -> None:
    ops = [
        {"op": "test", "path": "/note/1/text", "value": "second"},
        {"op": "add", "path": "/note/-", "value": {"text": "third"}},
        {"op": "add", "path": "/note/0", "value": {"text": "zeroth"}},
        {"op": "remove", "path": "/note/1"},
        {"op": "copy", "from": "/note/0", "path": "/note/-"},
        {"op": "move", "from": "/note/0", "path": "/note/1"},
        {"op": "replace", "path": "/status", "value": "amended"},
    ]
    r = _patch(client, headers, ops, JSON_PATCH)
    assert r.status_code == 200, r.text
    assert [n["text"] for n in r.json()["note"]] == ["second", "zeroth", "third", "zeroth"]
    # A JSON Patch array sent as application/json is applied as JSON Patch.
    r = _patch(client, headers, [{"op": "remove", "path": "/note"}], "application/json")
    assert r.status_code == 200 and "note" not in r.json()


@pytest.mark.parametrize(
    "path",
    [
        "/note/99999999999999999999999999999",  # beyond 64-bit
        "/note/9223372036854775808",
        "/note/2147483648",
        "/note/-1",
        "/note/01",
        "/note/+1",
        "/note/1_0",
        "/note/ 1",
        "/note/2",  # one past the end (only add may use it)
        "/note/x",
        "/status/0",
        "/nothing/here",
    ],
)
def test_json_patch_bad_pointers_are_422(
    client: TestClient, headers: dict[str, str], obs: dict[str, Any], path: str
) -> None:
    for op in ("replace", "remove", "test"):
        r = _patch(client, headers, [{"op": op, "path": path, "value": {"text": "x"}}], JSON_PATCH)
        assert r.status_code == 422, (op, path, r.text)
        assert r.json()["resourceType"] == "OperationOutcome"
    r = _patch(client, headers, [{"op": "add", "path": path + "/0", "value": 1}], JSON_PATCH)
    assert r.status_code == 422, (path, r.text)


def test_json_patch_add_index_bounds(
    client: TestClient, headers: dict[str, str], obs: dict[str, Any]
) -> None:
    for index in ("3", "18446744073709551616", "-1"):
        r = _patch(
            client, headers, [{"op": "add", "path": f"/note/{index}", "value": {}}], JSON_PATCH
        )
        assert r.status_code == 422, (index, r.text)
    r = _patch(
        client, headers, [{"op": "add", "path": "/note/2", "value": {"text": "end"}}], JSON_PATCH
    )
    assert r.status_code == 200 and r.json()["note"][2] == {"text": "end"}
    for bad in (
        {"op": "add", "path": "note", "value": 1},
        {"op": "move", "path": "/x"},
        {"op": "x", "path": "/x"},
        "x",
    ):
        assert _patch(client, headers, [bad], JSON_PATCH).status_code == 400, bad
    assert _patch(client, headers, {"op": "add"}, JSON_PATCH).status_code == 400
