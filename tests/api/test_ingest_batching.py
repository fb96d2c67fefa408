"""Issue 12: a transaction's plain creates are validated before its transaction opens and
written with one multi-row INSERT per table. What they store must be exactly what the same
resources store when created one by one (POST /fhir/Type): the bytes (id and lastUpdated
aside), version, meta, index columns, token and string rows, history. Runs on SQLite and, with
ALERTS_TEST_SERVERS=1, on PostgreSQL."""

from __future__ import annotations

import copy
from typing import Any

import orjson
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.config import Settings
from service.store.db import session_factory
from service.store.models import Outbox, Resource, ResourceString, ResourceToken, ResourceVersion
from tests.builders import back_pain, calcium, entry, patient, without_id


def _bodies(tag: str) -> list[dict[str, Any]]:
    """Resources of every index kind: strings (Patient name), tokens, dates, references."""
    p = patient(f"ign-{tag}")
    p["name"] = [{"family": "Ingestová", "given": ["Jana", "Q"]}]
    p["birthDate"] = "1961-04-02"
    p["meta"] = {"tag": [{"system": "urn:test", "code": "kept"}]}
    obs = calcium(f"o-{tag}", "ing-subject", value=11.2, when="2026-10-02T08:15:00Z")
    obs["identifier"] = [{"system": "urn:example:lab", "value": f"LAB-{tag}"}]
    obs["valueQuantity"]["value"] = 11.20  # decimals must come back as they were sent
    cond = back_pain(f"c-{tag}", "ing-subject", "2026-09-30T00:00:00Z")
    cond["note"] = [{"text": "päin ✓ \u00e9"}]
    return [without_id(r) for r in (p, obs, cond)]


def _stored(settings: Settings, rtype: str, rid: str) -> dict[str, Any]:
    """Everything the store holds for one resource, with its id and lastUpdated replaced."""
    factory = session_factory(settings.resolved_database_url)
    with factory() as s:
        row = s.execute(select(Resource).where(Resource.type == rtype, Resource.id == rid)).one()[0]
        assert row.content is not None
        lu = orjson.loads(row.content)["meta"]["lastUpdated"].encode()

        def norm(b: bytes | None) -> bytes | None:
            return None if b is None else b.replace(rid.encode(), b"<id>").replace(lu, b"<lu>")

        versions = [
            (v.version_id, v.method, v.deleted, norm(v.content), v.last_updated == row.last_updated)
            for v in s.scalars(
                select(ResourceVersion).where(
                    ResourceVersion.type == rtype, ResourceVersion.id == rid
                )
            )
        ]
        tokens = sorted(
            (t.param, t.system, t.code)
            for t in s.scalars(
                select(ResourceToken).where(ResourceToken.type == rtype, ResourceToken.id == rid)
            )
        )
        strings = sorted(
            (t.param, t.norm, t.exact)
            for t in s.scalars(
                select(ResourceString).where(ResourceString.type == rtype, ResourceString.id == rid)
            )
        )
        return {
            "content": norm(row.content),
            "version": row.version_id,
            "deleted": row.deleted,
            "patient": "<id>" if row.patient_id == rid else row.patient_id,
            "status": row.status,
            "dates": (row.date_start, row.date_end),
            "versions": versions,
            "tokens": tokens,
            "strings": strings,
        }


def _ids(response: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for e in response["entry"]:
        assert e["response"]["status"] == "201 Created", e
        rtype, rid, _h, version = e["response"]["location"].split("/")
        assert version == "1"
        out.append((rtype, rid))
    return out


def test_a_transaction_stores_exactly_what_single_creates_store(
    client: TestClient, headers: dict[str, str], settings: Settings
) -> None:
    bodies = _bodies("x")
    singles = []
    for body in bodies:
        r = client.post(f"/fhir/{body['resourceType']}", json=body, headers=headers)
        assert r.status_code == 201, r.text
        singles.append((body["resourceType"], r.json()["id"]))
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [entry("POST", b["resourceType"], copy.deepcopy(b)) for b in bodies],
    }
    r = client.post("/fhir", json=bundle, headers=headers)
    assert r.status_code == 200, r.text
    batched = _ids(r.json())
    assert len(batched) == 3
    for (stype, sid), (btype, bid) in zip(singles, batched, strict=True):
        assert stype == btype and sid != bid
        one, many = _stored(settings, stype, sid), _stored(settings, btype, bid)
        assert one == many
        assert many["versions"] == [(1, "POST", False, many["content"], True)]
    patient_row = _stored(settings, *batched[0])
    assert patient_row["strings"], "the Patient's name must be indexed"
    assert b'"meta":{"tag":[{"system":"urn:test","code":"kept"}],"versionId":"1"' in (
        patient_row["content"] or b""
    )
    # The batch answers like single creates: each location can be read back as served.
    for rtype, rid in batched:
        got = client.get(f"/fhir/{rtype}/{rid}", headers=headers)
        assert got.status_code == 200 and got.json()["id"] == rid


def test_puts_of_new_ids_store_what_single_puts_store(
    client: TestClient, headers: dict[str, str], settings: Settings
) -> None:
    """PUT Type/id of ids that do not exist yet are batched too; an existing id is updated
    (version 2) in the same transaction, one by one as before."""
    bodies = _bodies("put")
    singles = []
    for i, body in enumerate(bodies):
        rid = f"single-{i}"
        r = client.put(
            f"/fhir/{body['resourceType']}/{rid}", json={**body, "id": rid}, headers=headers
        )
        assert r.status_code == 201, r.text
        singles.append((body["resourceType"], rid))
    entries = [
        entry("PUT", f"{b['resourceType']}/batched-{i}", {**b, "id": f"batched-{i}"})
        for i, b in enumerate(bodies)
    ]
    again = {**bodies[1], "id": "single-1", "status": "amended"}
    entries.append(entry("PUT", "Observation/single-1", again))
    r = client.post(
        "/fhir",
        json={"resourceType": "Bundle", "type": "transaction", "entry": entries},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    answers = r.json()["entry"]
    assert [e["response"]["status"] for e in answers] == ["201 Created"] * 3 + ["200 OK"]
    assert answers[3]["response"]["location"] == "Observation/single-1/_history/2"
    for (stype, sid), (btype, bid) in zip(singles, _ids({"entry": answers[:3]}), strict=True):
        assert bid.startswith("batched-")
        one, many = _stored(settings, stype, sid), _stored(settings, btype, bid)
        if sid == "single-1":  # updated since (version 2): its history still starts alike
            assert [v[:3] for v in one["versions"]] == [(1, "POST", False), (2, "PUT", False)]
            assert many["versions"][0][:3] == (1, "POST", False)
            continue
        assert one == many


def test_batched_creates_ask_one_evaluation_per_patient(settings: Settings) -> None:
    """The outbox rows of a batched transaction: one per patient its clinical writes touch."""
    from service.api.app import create_app
    from service.auth import mint

    app = create_app(settings, start_relay=False)  # no relay: the rows stay for the test
    tok = mint(settings.signing_secret(), scope="system/*.*")
    h = {"Authorization": f"Bearer {tok}", "Content-Type": "application/fhir+json"}
    labs = [
        without_id(calcium(f"o{i}", f"ob-p{i % 3}", when=f"2026-10-0{1 + i}T08:00:00Z"))
        for i in range(6)
    ]
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [entry("POST", "Observation", b) for b in labs]
        + [entry("POST", "Patient", without_id(patient("ob-p9")))],
    }
    with TestClient(app) as client:
        r = client.post("/fhir", json=bundle, headers=h)
        assert r.status_code == 200, r.text
    with session_factory(settings.resolved_database_url)() as s:
        patients = sorted(s.scalars(select(Outbox.patient_id)))
    assert patients == ["ob-p0", "ob-p1", "ob-p2"]


def test_an_invalid_create_among_batched_ones_names_its_entry_and_stores_nothing(
    client: TestClient, headers: dict[str, str]
) -> None:
    labs = [
        without_id(calcium(f"o{i}", "inv-p", when=f"2026-10-0{1 + i}T08:00:00Z")) for i in range(5)
    ]
    for i, lab in enumerate(labs):
        lab["identifier"] = [{"system": "urn:example:lab", "value": f"INV-{i}"}]
    labs[3]["status"] = "bogus"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [entry("POST", "Observation", b) for b in labs],
    }
    r = client.post("/fhir", json=bundle, headers=headers)
    assert r.status_code == 422, r.text
    issues = r.json()["issue"]
    assert [i["expression"] for i in issues] == [["Bundle.entry[3]", "Observation.status"]]
    assert issues[0]["diagnostics"].startswith("Bundle.entry[3]: Observation.status")
    found = client.get("/fhir/Observation?subject=Patient/inv-p", headers=headers)
    assert found.status_code == 200 and found.json().get("total", 0) == 0
    assert "entry" not in found.json()

    # In a batch the same entry fails alone, the others are stored.
    bundle["type"] = "batch"
    r = client.post("/fhir", json=bundle, headers=headers)
    assert r.status_code == 200, r.text
    statuses = [e["response"]["status"] for e in r.json()["entry"]]
    assert statuses == ["201 Created"] * 3 + ["422"] + ["201 Created"]


def test_rights_are_still_checked_before_content(client: TestClient, settings: Settings) -> None:
    """Validation moved out of the transaction; its place in the order of checks did not: a
    token that may not create learns nothing about the body (403, not 422)."""
    from service.auth import mint

    tok = mint(settings.signing_secret(), scope="system/*.read")
    h = {"Authorization": f"Bearer {tok}", "Content-Type": "application/fhir+json"}
    bad = without_id(calcium("o1", "rights-p"))
    bad["status"] = "bogus"
    assert client.post("/fhir/Observation", json=bad, headers=h).status_code == 403
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [entry("POST", "Observation", bad)],
    }
    r = client.post("/fhir", json=bundle, headers=h)
    assert r.status_code == 403, r.text
    assert r.json()["issue"][0]["expression"][0] == "Bundle.entry[0]"
