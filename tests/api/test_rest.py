"""The FHIR REST surface through the real HTTP app and database."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from service.auth import mint
from service.config import Settings
from tests.builders import days_ago, lab, patient


def _obs(pid: str, oid: str = "o1", **kw: Any) -> dict[str, Any]:
    o = lab(oid, pid, "17861-6", 9.5, "mg/dL", days_ago(3))
    o.update(kw)
    return o


def test_metadata_is_open_and_truthful(client: TestClient) -> None:
    r = client.get("/fhir/metadata")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/fhir+json")
    cs = r.json()
    assert cs["resourceType"] == "CapabilityStatement"
    assert cs["fhirVersion"] == "4.0.1"
    types = {res["type"] for res in cs["rest"][0]["resource"]}
    assert {"Patient", "Observation", "Condition", "Flag", "CommunicationRequest"} <= types
    obs = next(res for res in cs["rest"][0]["resource"] if res["type"] == "Observation")
    names = {p["name"] for p in obs["searchParam"]}
    assert {"patient", "subject", "status", "code", "date", "identifier"} <= names
    # Every declared parameter is accepted by search.
    h = {"Authorization": f"Bearer {mint(client.app.state.jwt_secret)}"}  # type: ignore[attr-defined]
    for res in cs["rest"][0]["resource"]:
        for p in res["searchParam"]:
            value = "ge2020-01-01" if p["type"] == "date" else "x"
            rr = client.get(f"/fhir/{res['type']}", params={p["name"]: value}, headers=h)
            assert rr.status_code == 200, (res["type"], p["name"], rr.text)


def test_healthz_is_open(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_create_read_vread_history(client: TestClient, headers: dict[str, str]) -> None:
    r = client.post(
        "/fhir/Patient", json={"resourceType": "Patient", "gender": "female"}, headers=headers
    )
    assert r.status_code == 201
    body = r.json()
    pid = body["id"]
    assert body["meta"]["versionId"] == "1"
    assert body["meta"]["lastUpdated"].endswith("Z")
    assert r.headers["etag"] == 'W/"1"'
    assert r.headers["location"].endswith(f"/fhir/Patient/{pid}/_history/1")

    r = client.get(f"/fhir/Patient/{pid}", headers=headers)
    assert r.status_code == 200 and r.json()["gender"] == "female"
    assert (
        client.get(
            f"/fhir/Patient/{pid}", headers={**headers, "If-None-Match": 'W/"1"'}
        ).status_code
        == 304
    )

    upd = {**r.json(), "gender": "other"}
    r = client.put(f"/fhir/Patient/{pid}", json=upd, headers=headers)
    assert r.status_code == 200 and r.json()["meta"]["versionId"] == "2"
    assert (
        client.get(f"/fhir/Patient/{pid}/_history/1", headers=headers).json()["gender"] == "female"
    )
    hist = client.get(f"/fhir/Patient/{pid}/_history", headers=headers).json()
    assert hist["type"] == "history" and hist["total"] == 2
    assert client.get(f"/fhir/Patient/{pid}/_history/9", headers=headers).status_code == 404


def test_put_creates_with_client_id_and_body_is_kept(
    client: TestClient, headers: dict[str, str]
) -> None:
    res = _obs("p1")
    res["note"] = [{"text": "zero-width \u200b kept"}]
    r = client.put("/fhir/Observation/o1", json=res, headers=headers)
    assert r.status_code == 201
    back = client.get("/fhir/Observation/o1", headers=headers).json()
    meta = back.pop("meta")
    assert meta["versionId"] == "1"
    assert back == res


def test_if_match(client: TestClient, headers: dict[str, str]) -> None:
    client.put("/fhir/Patient/pm", json=patient("pm"), headers=headers)
    ok = client.put(
        "/fhir/Patient/pm", json=patient("pm"), headers={**headers, "If-Match": 'W/"1"'}
    )
    assert ok.status_code == 200
    stale = client.put(
        "/fhir/Patient/pm", json=patient("pm"), headers={**headers, "If-Match": 'W/"1"'}
    )
    assert stale.status_code == 412
    assert stale.json()["resourceType"] == "OperationOutcome"
    assert stale.json()["issue"][0]["code"] == "conflict"


def test_put_id_mismatch_is_400(client: TestClient, headers: dict[str, str]) -> None:
    r = client.put("/fhir/Patient/a", json=patient("b"), headers=headers)
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["id"]


def test_conditional_create(client: TestClient, headers: dict[str, str]) -> None:
    p = {"resourceType": "Patient", "identifier": [{"system": "urn:mrn", "value": "42"}]}
    first = client.post(
        "/fhir/Patient", json=p, headers={**headers, "If-None-Exist": "identifier=urn:mrn|42"}
    )
    assert first.status_code == 201
    again = client.post(
        "/fhir/Patient", json=p, headers={**headers, "If-None-Exist": "identifier=urn:mrn|42"}
    )
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    via_url = client.post("/fhir/Patient?identifier=urn:mrn|42", json=p, headers=headers)
    assert via_url.status_code == 200 and via_url.json()["id"] == first.json()["id"]
    client.post("/fhir/Patient", json=p, headers=headers)  # a second one with that identifier
    dup = client.post("/fhir/Patient?identifier=urn:mrn|42", json=p, headers=headers)
    assert dup.status_code == 412


def test_delete_then_gone(client: TestClient, headers: dict[str, str]) -> None:
    client.put("/fhir/Observation/od", json=_obs("p1", "od"), headers=headers)
    assert client.delete("/fhir/Observation/od", headers=headers).status_code == 204
    assert client.get("/fhir/Observation/od", headers=headers).status_code == 410
    assert client.get("/fhir/Observation?_id=od", headers=headers).json()["total"] == 0


def test_patch_status(client: TestClient, headers: dict[str, str]) -> None:
    client.put("/fhir/Observation/op", json=_obs("p1", "op"), headers=headers)
    ops = [{"op": "replace", "path": "/status", "value": "amended"}]
    r = client.patch(
        "/fhir/Observation/op",
        json=ops,
        headers={**headers, "Content-Type": "application/json-patch+json"},
    )
    assert r.status_code == 200 and r.json()["status"] == "amended"
    bad = client.patch(
        "/fhir/Observation/op",
        json=[{"op": "replace", "path": "/status", "value": "bogus"}],
        headers={**headers, "Content-Type": "application/json-patch+json"},
    )
    assert bad.status_code == 422
    wrong_type = client.patch("/fhir/Observation/op", json=ops, headers=headers)
    assert wrong_type.status_code == 415


def test_search_parameters(client: TestClient, headers: dict[str, str]) -> None:
    a = lab("sa", "ps", "17861-6", 9.5, "mg/dL", "2026-01-10T10:00:00Z")
    b = lab("sb", "ps", "6768-6", 90, "U/L", "2026-02-10T10:00:00Z")
    c = lab("sc", "other", "17861-6", 9.9, "mg/dL", "2026-03-10T10:00:00Z", status="cancelled")
    a["identifier"] = [{"system": "urn:lab", "value": "A-1"}]
    for res in (a, b, c):
        assert (
            client.put(f"/fhir/Observation/{res['id']}", json=res, headers=headers).status_code
            == 201
        )

    def ids(query: str) -> set[str]:
        r = client.get(f"/fhir/Observation?{query}", headers=headers)
        assert r.status_code == 200, r.text
        return {e["resource"]["id"] for e in r.json().get("entry", [])}

    assert ids("patient=ps") == {"sa", "sb"}
    assert ids("subject=Patient/ps") == {"sa", "sb"}
    assert ids("patient=ps,other") == {"sa", "sb", "sc"}
    assert ids("status=cancelled") == {"sc"}
    assert ids("code=http://loinc.org|17861-6") == {"sa", "sc"}
    assert ids("code=6768-6") == {"sb"}
    assert ids("code=http://loinc.org|") == {"sa", "sb", "sc"}
    assert ids("identifier=urn:lab|A-1") == {"sa"}
    assert ids("_id=sb,sc") == {"sb", "sc"}
    assert ids("date=2026-01-10") == {"sa"}
    assert ids("date=ge2026-02-01") == {"sb", "sc"}
    assert ids("date=gt2026-02-10") == {"sc"}
    assert ids("date=le2026-02-10") == {"sa", "sb"}
    assert ids("date=lt2026-02-10") == {"sa"}
    assert ids("date=ge2026-01-01&date=lt2026-03-01") == {"sa", "sb"}
    assert ids("patient=ps&code=http://loinc.org|17861-6") == {"sa"}
    assert ids("category=laboratory") == {"sa", "sb", "sc"}


def test_paging_and_totals(client: TestClient, headers: dict[str, str]) -> None:
    for i in range(7):
        client.put(f"/fhir/Patient/pg{i}", json=patient(f"pg{i}"), headers=headers)
    seen: list[str] = []
    url: str | None = "/fhir/Patient?_count=3"
    pages = 0
    while url:
        page = client.get(url, headers=headers).json()
        assert page["total"] == 7
        seen += [e["resource"]["id"] for e in page.get("entry", [])]
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
        pages += 1
    assert pages == 3 and sorted(seen) == sorted(f"pg{i}" for i in range(7))
    none = client.get("/fhir/Patient?_count=2&_total=none", headers=headers).json()
    assert "total" not in none and len(none["entry"]) == 2
    count = client.get("/fhir/Patient?_summary=count", headers=headers).json()
    assert (count["total"] == 7 and "entry" not in count) or count["entry"] == []
    zero = client.get("/fhir/Patient?_count=0&_totalMethod=count", headers=headers).json()
    assert zero["total"] == 7


def test_error_statuses(client: TestClient, headers: dict[str, str], settings: Settings) -> None:
    def oo(r: Any, status: int) -> dict[str, Any]:
        assert r.status_code == status, r.text
        body = r.json()
        assert body["resourceType"] == "OperationOutcome"
        return body

    oo(client.post("/fhir/Observation", content=b"{not json", headers=headers), 400)
    oo(client.get("/fhir/Observation?unknown=1", headers=headers), 400)
    oo(client.get("/fhir/Observation?date=ge-not-a-date", headers=headers), 400)
    oo(client.get("/fhir/Observation?_count=abc", headers=headers), 400)
    oo(client.get("/fhir/Observation"), 401)
    oo(client.get("/fhir/Observation", headers={"Authorization": "Bearer nonsense"}), 401)
    expired = mint(settings.signing_secret(), ttl=-10)
    oo(client.get("/fhir/Observation", headers={"Authorization": f"Bearer {expired}"}), 401)
    oo(client.get("/ops/backlog"), 401)
    read_only = mint(settings.signing_secret(), scope="system/Observation.read")
    ro = {"Authorization": f"Bearer {read_only}", "Content-Type": "application/fhir+json"}
    assert client.get("/fhir/Observation", headers=ro).status_code == 200
    oo(client.post("/fhir/Observation", json=_obs("p"), headers=ro), 403)
    oo(client.get("/fhir/Patient", headers=ro), 403)
    oo(client.get("/fhir/Observation/nope", headers=headers), 404)
    oo(client.get("/fhir/Medication/x", headers=headers), 404)
    big = b'{"resourceType":"Patient","x":"' + b"a" * (settings.max_body_bytes + 10) + b'"}'
    oo(client.post("/fhir/Patient", content=big, headers=headers), 413)
    oo(
        client.post(
            "/fhir/Patient",
            content=b"<Patient/>",
            headers={**headers, "Content-Type": "application/fhir+xml"},
        ),
        415,
    )
    invalid = oo(
        client.post("/fhir/Observation", json={**_obs("p"), "status": "bogus"}, headers=headers),
        422,
    )
    assert invalid["issue"][0]["expression"] == ["Observation.status"]
    typed = oo(
        client.post(
            "/fhir/Observation",
            json={**_obs("p"), "valueQuantity": {"value": "abc"}},
            headers=headers,
        ),
        422,
    )
    assert typed["issue"][0]["expression"] == ["Observation.valueQuantity.value"]
    oo(
        client.post("/fhir/Observation", json={**_obs("p"), "bogusElement": 1}, headers=headers),
        422,
    )
    oo(client.post("/fhir/Observation", json=patient("x"), headers=headers), 422)
    # Nothing of a rejected request is stored.
    assert client.get("/fhir/Observation", headers=headers).json()["total"] == 0


def test_v2_scopes(client: TestClient, settings: Settings) -> None:
    tok = mint(settings.signing_secret(), scope="system/Patient.rs system/Observation.cud")
    h = {"Authorization": f"Bearer {tok}", "Content-Type": "application/fhir+json"}
    assert client.get("/fhir/Patient", headers=h).status_code == 200
    assert client.post("/fhir/Observation", json=_obs("p"), headers=h).status_code == 201
    assert client.get("/fhir/Observation", headers=h).status_code == 403
    assert client.post("/fhir/Patient", json=patient("q"), headers=h).status_code == 403
