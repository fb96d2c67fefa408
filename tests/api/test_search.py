"""Search as real FHIR clients use it (issue 8): _sort, _include/_revinclude (scoped),
_summary, _elements, paging links, and Patient search by name, family, given, birthdate and
gender; through the real HTTP app and database."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from service.auth import mint
from service.config import Settings
from tests.builders import back_pain_story, lab
from tests.conftest import R4Validator, wait_idle

SUBSETTED = "SUBSETTED"


def _get(client: TestClient, headers: dict[str, str], query: str) -> dict[str, Any]:
    r = client.get(query, headers=headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _ids(bundle: dict[str, Any], mode: str = "match") -> list[str]:
    return [
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle.get("entry", [])
        if e["search"]["mode"] == mode
    ]


def _link(bundle: dict[str, Any], relation: str) -> str | None:
    return next((x["url"] for x in bundle["link"] if x["relation"] == relation), None)


def _put(client: TestClient, headers: dict[str, str], res: dict[str, Any]) -> None:
    r = client.put(f"/fhir/{res['resourceType']}/{res['id']}", json=res, headers=headers)
    assert r.status_code in (200, 201), r.text


def _alerted(client: TestClient, headers: dict[str, str], pid: str) -> None:
    """A real alert for `pid`: Flag + CommunicationRequest (about the Flag) by the worker."""
    assert client.post("/fhir", json=back_pain_story(pid), headers=headers).status_code == 200
    wait_idle(client, headers)


def test_sort_by_date_and_last_updated_both_directions(
    client: TestClient, headers: dict[str, str]
) -> None:
    # Stored in an order that is neither the id order nor the date order.
    dates = {"s2": "2026-03-01T00:00:00Z", "s1": "2026-01-01T00:00:00Z", "s3": "2026-02-01"}
    for oid, when in dates.items():
        _put(client, headers, lab(oid, "ps", "17861-6", 9.5, "mg/dL", when))
    undated = lab("s0", "ps", "17861-6", 9.5, "mg/dL", "2026-01-01")
    undated.pop("effectiveDateTime")
    _put(client, headers, undated)

    def order(sort: str) -> list[str]:
        bundle = _get(client, headers, f"/fhir/Observation?patient=ps&_sort={sort}")
        return [i.split("/")[1] for i in _ids(bundle)]

    assert order("date") == ["s1", "s3", "s2", "s0"]  # undated last in both directions
    assert order("-date") == ["s2", "s3", "s1", "s0"]
    assert order("_lastUpdated") == ["s2", "s1", "s3", "s0"]
    assert order("-_lastUpdated") == ["s0", "s3", "s1", "s2"]
    assert order("-date,_id") == ["s2", "s3", "s1", "s0"]
    # Sorting is applied before paging: page 2 continues the order.
    page = _get(client, headers, "/fhir/Observation?patient=ps&_sort=-date&_count=2&_offset=2")
    assert [i.split("/")[1] for i in _ids(page)] == ["s1", "s0"]
    for bad in ("status", "nonsense", "-", "date,date,date,date"):
        r = client.get(f"/fhir/Observation?_sort={bad}", headers=headers)
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["resourceType"] == "OperationOutcome"


def test_include_flag_and_request_targets(client: TestClient, headers: dict[str, str]) -> None:
    _alerted(client, headers, "inc1")
    _alerted(client, headers, "inc2")
    flags = _get(client, headers, "/fhir/Flag?_include=Flag:subject")
    assert flags["total"] == 2  # matches only
    assert sorted(_ids(flags, "include")) == ["Patient/inc1", "Patient/inc2"]
    assert [e["search"]["mode"] for e in flags["entry"]].count("match") == 2

    requests = _get(
        client,
        headers,
        "/fhir/CommunicationRequest?patient=inc1&_include=CommunicationRequest:subject"
        "&_include=CommunicationRequest:about",
    )
    assert requests["total"] == 1
    flag_id = _ids(_get(client, headers, "/fhir/Flag?patient=inc1"))[0]
    assert sorted(_ids(requests, "include")) == sorted(["Patient/inc1", flag_id])
    # A target type narrows the include.
    only_flag = _get(
        client,
        headers,
        "/fhir/CommunicationRequest?patient=inc1&_include=CommunicationRequest:about:Flag",
    )
    assert _ids(only_flag, "include") == [flag_id]

    _put(client, headers, lab("inc-o1", "inc1", "17861-6", 9.5, "mg/dL", "2026-01-01"))
    _put(client, headers, lab("inc-o2", "inc1", "17861-6", 9.6, "mg/dL", "2026-01-02"))
    obs = _get(client, headers, "/fhir/Observation?patient=inc1&_include=Observation:patient")
    assert _ids(obs, "include") == ["Patient/inc1"]  # once, however many matches refer to it
    # A deleted target is not included.
    assert client.delete("/fhir/Patient/inc1", headers=headers).status_code == 204
    obs = _get(client, headers, "/fhir/Observation?patient=inc1&_include=Observation:patient")
    assert _ids(obs, "include") == []
    for bad in (
        "Flag:subject",
        "Observation:nonsense",
        "Observation",
        "*",
        "Observation:patient:Flag",
    ):
        r = client.get(f"/fhir/Observation?_include={bad}", headers=headers)
        assert r.status_code == 400, (bad, r.text)
    iterate = client.get("/fhir/Observation?_include:iterate=Observation:patient", headers=headers)
    assert iterate.status_code == 400


def test_revinclude_flags_on_patient(client: TestClient, headers: dict[str, str]) -> None:
    _alerted(client, headers, "rev1")
    _put(client, headers, {"resourceType": "Patient", "id": "rev2", "gender": "male"})
    bundle = _get(client, headers, "/fhir/Patient?_id=rev1,rev2&_revinclude=Flag:subject")
    assert bundle["total"] == 2
    assert sorted(_ids(bundle)) == ["Patient/rev1", "Patient/rev2"]
    flags = _ids(bundle, "include")
    assert len(flags) == 1 and flags[0].startswith("Flag/")
    assert flags == _ids(_get(client, headers, "/fhir/Flag?patient=rev1"))
    r = client.get("/fhir/Patient?_revinclude=CommunicationRequest:about", headers=headers)
    assert r.status_code == 400  # not indexed: cannot be searched backwards


def test_includes_respect_the_callers_read_scopes(
    client: TestClient, headers: dict[str, str], settings: Settings
) -> None:
    _alerted(client, headers, "sc1")

    def as_scopes(scope: str, query: str) -> dict[str, Any]:
        tok = mint(settings.signing_secret(), scope=scope)
        return _get(client, {"Authorization": f"Bearer {tok}"}, query)

    no_patient = as_scopes("system/Flag.read", "/fhir/Flag?_include=Flag:subject")
    assert len(_ids(no_patient)) == 1 and _ids(no_patient, "include") == []
    with_patient = as_scopes(
        "system/Flag.read system/Patient.read", "/fhir/Flag?_include=Flag:subject"
    )
    assert _ids(with_patient, "include") == ["Patient/sc1"]
    no_flag = as_scopes("system/Patient.rs", "/fhir/Patient?_revinclude=Flag:subject")
    assert _ids(no_flag) == ["Patient/sc1"] and _ids(no_flag, "include") == []
    # Search-only on the target (v2 "s" without "r") does not allow reading it either.
    search_only = as_scopes(
        "system/CommunicationRequest.rs system/Flag.s",
        "/fhir/CommunicationRequest?_include=CommunicationRequest:about",
    )
    assert _ids(search_only, "include") == []


def test_next_links_keep_every_parameter(client: TestClient, headers: dict[str, str]) -> None:
    for i in range(5):
        _put(client, headers, lab(f"nx{i}", "nx", "17861-6", 9.0 + i, "mg/dL", f"2026-01-0{i + 1}"))
    _put(client, headers, {"resourceType": "Patient", "id": "nx", "gender": "female"})
    query = (
        "/fhir/Observation?patient=nx&_sort=-date&_include=Observation:patient"
        "&_elements=status,code&_count=2"
    )
    seen: list[str] = []
    url: str | None = query
    while url:
        page = _get(client, headers, url)
        assert page["total"] == 5
        seen += _ids(page)
        assert _ids(page, "include") == ["Patient/nx"]
        for e in page["entry"]:
            if e["search"]["mode"] == "match":
                assert "valueQuantity" not in e["resource"]
        url = _link(page, "next")
        if url:
            params = dict(parse_qsl(urlsplit(url).query))
            assert params["_sort"] == "-date" and params["_include"] == "Observation:patient"
            assert params["_elements"] == "status,code" and params["patient"] == "nx"
    assert seen == [f"Observation/nx{i}" for i in (4, 3, 2, 1, 0)]


def test_summary_count_has_only_a_total(client: TestClient, headers: dict[str, str]) -> None:
    for i in range(3):
        _put(client, headers, {"resourceType": "Patient", "id": f"sc{i}", "gender": "female"})
    bundle = _get(client, headers, "/fhir/Patient?_summary=count&_count=1")
    assert bundle["total"] == 3
    assert "entry" not in bundle
    assert _link(bundle, "next") is None
    assert _link(bundle, "self") is not None
    empty = _get(client, headers, "/fhir/Patient?_id=none-such")
    assert empty["total"] == 0 and "entry" not in empty  # FHIR JSON has no empty arrays


def test_summary_and_elements_subset_and_say_so(
    client: TestClient, headers: dict[str, str]
) -> None:
    obs = lab("sum1", "sump", "17861-6", 9.5, "mg/dL", "2026-01-01T00:00:00Z")
    obs["note"] = [{"text": "not a summary element"}]
    obs["text"] = {
        "status": "generated",
        "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>',
    }
    _put(client, headers, obs)

    def only(query: str) -> dict[str, Any]:
        bundle = _get(client, headers, f"/fhir/Observation?_id=sum1&{query}")
        resource: dict[str, Any] = bundle["entry"][0]["resource"]
        return resource

    def subsetted(res: dict[str, Any]) -> bool:
        return any(t["code"] == SUBSETTED for t in res["meta"].get("tag", []))

    full = only("_summary=false")
    assert "note" in full and not subsetted(full)
    summary = only("_summary=true")
    assert subsetted(summary) and "note" not in summary and "text" not in summary
    assert {"status", "code", "subject", "effectiveDateTime", "valueQuantity"} <= set(summary)
    data = only("_summary=data")
    assert subsetted(data) and "text" not in data and "note" in data
    text_only = only("_summary=text")
    assert subsetted(text_only) and "text" in text_only and "valueQuantity" not in text_only
    assert {"status", "code"} <= set(text_only)  # mandatory elements stay
    elements = only("_elements=effective,note")
    assert subsetted(elements)
    # Mandatory (status, code) and the listed ones (a choice by its base name) stay.
    assert set(elements) == {
        "resourceType",
        "id",
        "meta",
        "status",
        "code",
        "effectiveDateTime",
        "note",
    }
    assert elements["meta"]["versionId"] == "1"
    # The stored resource is untouched.
    assert "SUBSETTED" not in str(client.get("/fhir/Observation/sum1", headers=headers).json())
    for bad in ("_summary=maybe", "_elements=", "_elements=a.b", "_summary=true&_elements=code"):
        r = client.get(f"/fhir/Observation?{bad}", headers=headers)
        assert r.status_code == 400, (bad, r.text)


def _patient(pid: str, family: str, given: list[str], **kw: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": pid,
        "name": [{"family": family, "given": given}],
        **kw,
    }


@pytest.fixture
def patients(client: TestClient, headers: dict[str, str]) -> None:
    for res in (
        _patient("pa", "Müller", ["Élodie", "Anne"], gender="female", birthDate="1960-04-12"),
        _patient("pb", "Mullins", ["Ann"], gender="female", birthDate="1975-11"),
        _patient("pc", "van der Berg", ["Piet"], gender="male", birthDate="1950"),
        _patient("pd", "100%_Real", ["X"], gender="other"),
    ):
        _put(client, headers, res)


def test_patient_string_search(client: TestClient, headers: dict[str, str], patients: None) -> None:
    def ids(query: str) -> set[str]:
        return {i.split("/")[1] for i in _ids(_get(client, headers, f"/fhir/Patient?{query}"))}

    assert ids("family=mul") == {"pa", "pb"}  # starts with, case-insensitive
    assert ids("family=MULLER") == {"pa"}  # accent-insensitive
    assert ids("family=müller") == {"pa"}  # the accent is not needed, nor harmful
    assert ids("family=ller") == set()  # starts with, not contains
    assert ids("family:contains=ll") == {"pa", "pb"}
    assert ids("family:contains=DER b") == {"pc"}
    assert ids("family:exact=Müller") == {"pa"}
    assert ids("family:exact=müller") == set()  # exact is exact
    assert ids("given=elo") == {"pa"}
    assert ids("given=ann") == {"pa", "pb"}
    assert ids("given=ann&family=mullins") == {"pb"}
    assert ids("given=piet,elodie") == {"pa", "pc"}
    assert ids("name=van") == {"pc"}  # name covers family and given
    assert ids("name=anne") == {"pa"}
    # LIKE wildcards in a value are literal characters.
    assert ids("family=100%25_") == {"pd"}
    assert ids("family=%25") == set()
    assert ids("family=_") == set()
    # A rename is searchable at once; the old name no longer matches.
    _put(client, headers, _patient("pb", "Smith", ["Ann"]))
    assert ids("family=mullins") == set() and ids("family=smi") == {"pb"}
    assert client.get("/fhir/Patient?family:missing=true", headers=headers).status_code == 400
    assert client.get("/fhir/Patient?family=%20%20", headers=headers).status_code == 400


def test_patient_birthdate_and_gender(
    client: TestClient, headers: dict[str, str], patients: None
) -> None:
    def ids(query: str) -> set[str]:
        return {i.split("/")[1] for i in _ids(_get(client, headers, f"/fhir/Patient?{query}"))}

    assert ids("birthdate=1960-04-12") == {"pa"}
    assert ids("birthdate=1960") == {"pa"}
    assert ids("birthdate=1975-11") == {"pb"}
    assert ids("birthdate=lt1960-01-01") == {"pc"}
    assert ids("birthdate=ge1960-04-12") == {"pa", "pb"}
    assert ids("birthdate=gt1960-04-12") == {"pb"}
    assert ids("birthdate=le1960-04-12") == {"pa", "pc"}
    assert ids("birthdate=ge1950&birthdate=lt1961") == {"pa", "pc"}
    assert ids("gender=female") == {"pa", "pb"}
    assert ids("gender=http://hl7.org/fhir/administrative-gender|male") == {"pc"}
    assert ids("gender=male,other") == {"pc", "pd"}
    order = _ids(_get(client, headers, "/fhir/Patient?_sort=-birthdate&gender=female,male"))
    assert order == ["Patient/pb", "Patient/pa", "Patient/pc"]
    assert client.get("/fhir/Patient?birthdate=ne1960", headers=headers).status_code == 400


def test_migration_0005_indexes_patients_stored_before_it(tmp_path: Any) -> None:
    """A database at 0004 with Patients already stored: after the upgrade their names,
    birthDate and gender are searchable."""
    from alembic import command

    from service.store.migrate import alembic_config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(alembic_config(url), "0004")
    engine = create_engine(url)
    body = (
        b'{"resourceType":"Patient","id":"old","meta":{"versionId":"1"},'
        b'"name":[{"family":"\xc3\x89toile","given":["Zo\xc3\xa9"]}],'
        b'"gender":"female","birthDate":"1970-02-03"}'
    )
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO resources (type, id, version_id, last_updated, deleted, patient_id,"
                " content) VALUES ('Patient', 'old', 1, '2026-01-01 00:00:00', 0, 'old', :c)"
            ),
            {"c": body},
        )
    command.upgrade(alembic_config(url), "head")
    with engine.connect() as conn:
        strings = set(conn.execute(text("SELECT param, norm, exact FROM resource_strings")))
        gender = conn.execute(
            text("SELECT code FROM resource_tokens WHERE param = 'gender' AND id = 'old'")
        ).scalar()
        start = conn.execute(text("SELECT date_start FROM resources WHERE id = 'old'")).scalar()
    engine.dispose()
    assert ("family", "etoile", "Étoile") in strings and ("given", "zoe", "Zoé") in strings
    assert gender == "female" and str(start).startswith("1970-02-03")


def test_included_resources_are_capped_with_a_warning(
    settings: Settings, headers: dict[str, str]
) -> None:
    from workers.embedded import build_app

    capped = settings.model_copy(update={"search_max_included": 2})
    with TestClient(build_app(capped)) as client:
        _put(client, headers, {"resourceType": "Patient", "id": "cap", "gender": "female"})
        for i in range(3):
            _put(client, headers, lab(f"cap{i}", "cap", "17861-6", 9.5, "mg/dL", "2026-01-01"))
        bundle = _get(client, headers, "/fhir/Patient?_id=cap&_revinclude=Observation:patient")
        wait_idle(client, headers)
    assert _ids(bundle) == ["Patient/cap"] and bundle["total"] == 1
    assert len(_ids(bundle, "include")) == 2
    outcome = [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert len(outcome) == 1
    assert outcome[0]["resource"]["issue"][0]["severity"] == "warning"


def test_new_searchset_shapes_are_valid_r4(
    client: TestClient, headers: dict[str, str], r4_validate: R4Validator
) -> None:
    """Include/revinclude entries, subsetted resources and count-only Bundles pass the
    offline R4 validator like everything else the service emits."""
    _alerted(client, headers, "val1")
    queries = [
        "/fhir/Flag?_include=Flag:subject",
        "/fhir/CommunicationRequest?_include=CommunicationRequest:about"
        "&_include=CommunicationRequest:subject",
        "/fhir/Patient?_revinclude=Flag:subject&_revinclude=Condition:patient",
        "/fhir/Condition?_summary=true&_sort=-date",
        "/fhir/Condition?_summary=text",
        "/fhir/Condition?_summary=data",
        "/fhir/Condition?_elements=code",
        "/fhir/CommunicationRequest?_elements=priority&_include=CommunicationRequest:about",
        "/fhir/Patient?_summary=count",
        "/fhir/Patient?name=zzz",
    ]
    bundles = [_get(client, headers, q) for q in queries]
    assert all(b["resourceType"] == "Bundle" for b in bundles)
    r4_validate(bundles)
