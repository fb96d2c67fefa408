"""The CapabilityStatement tells the truth (issue 8): every interaction it advertises for a
type answers as advertised (and the ones it leaves out are refused), every advertised search
parameter, include and revinclude finds what it should and nothing else, every patch format
applies. A new type, interaction or parameter fails here until it is given a sample."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.config import Settings
from service.fhir.registry import READ_ONLY_TYPES
from service.store import resources as store
from service.store.db import session_factory, transaction
from tests.builders import LOINC, SNOMED, condition, lab
from tests.conftest import wait_idle

PID = "cap-p"
HOOK = "http://127.0.0.1:9/hook"  # loopback; the subscription is "off", nothing is sent


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The Subscription sample points at loopback, which the endpoint policy allows only
    when configured (as the subscription tests do)."""
    return settings.model_copy(update={"subscription_allowed_hosts": "127.0.0.1"})


def _category(system: str, code: str) -> list[dict[str, Any]]:
    return [{"coding": [{"system": system, "code": code}]}]


def _ident(rid: str) -> list[dict[str, str]]:
    return [{"system": "urn:cap", "value": rid}]


def _patient(rid: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": rid,
        "identifier": _ident(rid),
        "name": [{"family": "Capability", "given": ["Carla"]}],
        "gender": "female",
        "birthDate": "1961-02-03",
    }


def _observation(rid: str) -> dict[str, Any]:
    return {
        **lab(rid, PID, "17861-6", 9.4, "mg/dL", "2026-01-05T10:00:00Z"),
        "identifier": _ident(rid),
    }


def _condition(rid: str) -> dict[str, Any]:
    res = condition(rid, PID, "38341003", SNOMED, onset="2026-01-06")  # hypertension
    res["identifier"] = _ident(rid)
    res["category"] = _category(
        "http://terminology.hl7.org/CodeSystem/condition-category", "problem-list-item"
    )
    return res


def _flag(rid: str) -> dict[str, Any]:
    return {
        "resourceType": "Flag",
        "id": rid,
        "identifier": _ident(rid),
        "status": "active",
        "category": _category("http://terminology.hl7.org/CodeSystem/flag-category", "clinical"),
        "code": {"coding": [{"system": "urn:cap:flag", "code": "cap-flag"}]},
        "subject": {"reference": f"Patient/{PID}"},
        "period": {"start": "2026-01-07T08:00:00Z"},
    }


def _request(rid: str) -> dict[str, Any]:
    return {
        "resourceType": "CommunicationRequest",
        "id": rid,
        "identifier": _ident(rid),
        "status": "active",
        "category": _category("urn:cap:category", "notification"),
        "priority": "routine",
        "subject": {"reference": f"Patient/{PID}"},
        "about": [{"reference": "Flag/cap-flag"}],
        "authoredOn": "2026-01-08T09:00:00Z",
        "payload": [{"contentString": "capability check"}],
    }


def _subscription(rid: str) -> dict[str, Any]:
    return {
        "resourceType": "Subscription",
        "id": rid,
        "status": "off",
        "reason": "capability check",
        "criteria": "Flag?status=active",
        "channel": {
            "type": "rest-hook",
            "endpoint": HOOK,
            "payload": "application/fhir+json",
            "extension": [
                {
                    "url": "https://fhir-alerts.example.org/fhir/StructureDefinition/subscription-secret",
                    "valueString": "capability-secret-0123456789",
                }
            ],
        },
    }


def _careteam(rid: str) -> dict[str, Any]:  # issue 13: routing to a stored CareTeam
    return {
        "resourceType": "CareTeam",
        "id": rid,
        "identifier": _ident(rid),
        "status": "active",
        "category": _category("urn:cap:careteam", "oncology"),
        "name": "capability check team",
        "participant": [{"member": {"reference": "PractitionerRole/cap-oncall"}}],
    }


def _audit_event(rid: str) -> dict[str, Any]:  # issue 13: written by the server only
    return {
        "resourceType": "AuditEvent",
        "id": rid,
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "code": "rest",
        },
        "subtype": [{"system": "urn:cap:action", "code": "acknowledge"}],
        "action": "U",
        "recorded": "2026-01-09T09:00:00Z",
        "outcome": "0",
        "agent": [{"who": {"identifier": {"value": "cap-agent"}}, "requestor": True}],
        "source": {"observer": {"display": "capability check"}},
        "entity": [{"what": {"reference": f"Patient/{PID}"}}],
    }


def _store_directly(settings: Settings, rtype: str, rid: str, body: dict[str, Any]) -> None:
    """Seeds a type clients may not write (READ_ONLY_TYPES) the way the server writes it."""
    with transaction(session_factory(settings.resolved_database_url)) as session:
        store.save(session, resource_type=rtype, resource_id=rid, resource=body)


SAMPLES: dict[str, Callable[[str], dict[str, Any]]] = {
    "Patient": _patient,
    "Observation": _observation,
    "Condition": _condition,
    "Flag": _flag,
    "CommunicationRequest": _request,
    "Subscription": _subscription,
    "CareTeam": _careteam,
    "AuditEvent": _audit_event,
}
# Ids the include samples point at.
FIXED_IDS = {"Patient": PID, "Flag": "cap-flag"}

# (matching value, non-matching value) of each advertised search parameter, per type.
SEARCH_VALUES: dict[tuple[str, str], tuple[str, str]] = {
    ("*", "_id"): ("{id}", "nobody"),
    ("*", "_lastUpdated"): ("ge2020-01-01", "lt2020-01-01"),
    ("*", "identifier"): ("urn:cap|{id}", "urn:cap|nobody"),
    ("*", "patient"): (PID, "nobody"),
    ("*", "subject"): (f"Patient/{PID}", "Patient/nobody"),
    ("Patient", "name"): ("carl", "carx"),
    ("Patient", "family"): ("CAPAB", "Carla"),
    ("Patient", "given"): ("carla", "Capability"),
    ("Patient", "birthdate"): ("1961-02", "ge1961-02-04"),
    ("Patient", "gender"): ("female", "male"),
    ("Observation", "code"): (f"{LOINC}|17861-6", f"{LOINC}|6768-6"),
    ("Observation", "category"): ("laboratory", "vital-signs"),
    ("Observation", "status"): ("final", "amended"),
    ("Observation", "date"): ("2026-01-05", "gt2026-01-05"),
    ("Condition", "code"): ("38341003", "254837009"),
    ("Condition", "category"): ("problem-list-item", "encounter-diagnosis"),
    ("Condition", "clinical-status"): ("active", "resolved"),
    ("Condition", "verification-status"): ("confirmed", "refuted"),
    ("Condition", "date"): ("le2026-01-06", "lt2026-01-06"),
    ("Flag", "code"): ("urn:cap:flag|cap-flag", "urn:cap:flag|other"),
    ("Flag", "category"): ("clinical", "safety"),
    ("Flag", "status"): ("active", "inactive"),
    ("Flag", "date"): ("ge2026-01-07", "lt2026-01-07"),
    ("CommunicationRequest", "category"): ("urn:cap:category|notification", "alert"),
    ("CommunicationRequest", "status"): ("active", "completed"),
    ("CommunicationRequest", "priority"): ("routine", "stat"),
    ("CommunicationRequest", "date"): ("2026-01-08T09:00:00Z", "ne2026-01-08"),
    ("Subscription", "status"): ("off", "active"),
    ("CareTeam", "category"): ("urn:cap:careteam|oncology", "urn:cap:careteam|other"),
    ("CareTeam", "status"): ("active", "inactive"),
    ("AuditEvent", "entity"): (f"Patient/{PID}", "Patient/nobody"),
    ("AuditEvent", "agent"): ("cap-agent", "nobody"),
    ("AuditEvent", "action"): ("acknowledge", "snooze"),
    ("AuditEvent", "date"): ("ge2026-01-09", "lt2026-01-09"),
}


def _values(rtype: str, name: str, rid: str) -> tuple[str, str]:
    pair = SEARCH_VALUES.get((rtype, name)) or SEARCH_VALUES.get(("*", name))
    assert pair is not None, f"no test values for the advertised parameter {rtype}.{name}"
    return pair[0].format(id=rid), pair[1].format(id=rid)


@pytest.fixture
def statement(client: TestClient) -> dict[str, Any]:
    r = client.get("/fhir/metadata")
    assert r.status_code == 200
    cs: dict[str, Any] = r.json()
    return cs


def _resources(statement: dict[str, Any]) -> Iterator[dict[str, Any]]:
    resources: list[dict[str, Any]] = statement["rest"][0]["resource"]
    for res in resources:
        assert res["type"] in SAMPLES, f"the new type {res['type']} needs a sample here"
        yield res


def _check(r: Any, status: int, what: str) -> dict[str, Any]:
    assert r.status_code == status, (what, r.status_code, r.text[:400])
    body: dict[str, Any] = r.json() if r.content else {}
    return body


def _ids(bundle: dict[str, Any], mode: str = "match") -> set[str]:
    return {
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle.get("entry", [])
        if e["search"]["mode"] == mode
    }


INTERACTIONS = {
    "create",
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "search-type",
}


def test_every_advertised_interaction_answers_as_advertised(
    client: TestClient, headers: dict[str, str], statement: dict[str, Any], settings: Settings
) -> None:
    patch_formats = statement.get("patchFormat", [])
    for res in _resources(statement):
        rtype = res["type"]
        sample = SAMPLES[rtype]
        codes = {i["code"] for i in res["interaction"]}
        assert codes <= INTERACTIONS, f"{rtype}: unknown interactions {codes - INTERACTIONS}"
        rid = f"cap-{rtype.lower()}-1"
        base = f"/fhir/{rtype}"
        if rtype in READ_ONLY_TYPES:  # the server's own records: seeded as the server writes
            _store_directly(settings, rtype, rid, sample(rid))

        # update (PUT with the client's id) creates (updateCreate) and then updates.
        r = client.put(f"{base}/{rid}", json=sample(rid), headers=headers)
        if "update" in codes:
            _check(r, 201 if res["updateCreate"] else 200, f"{rtype} update-create")
            _check(client.put(f"{base}/{rid}", json=sample(rid), headers=headers), 200, "update")
        else:
            assert r.status_code == 405, (rtype, "update", r.status_code)

        body = {k: v for k, v in sample("unused").items() if k != "id"}
        r = client.post(base, json=body, headers=headers)
        if "create" in codes:
            created = _check(r, 201, f"{rtype} create")
            assert r.headers["location"].endswith(f"/{rtype}/{created['id']}/_history/1")
        else:
            assert r.status_code == 405, (rtype, "create", r.status_code)

        r = client.get(f"{base}/{rid}", headers=headers)
        assert r.status_code == (200 if "read" in codes else 405), (rtype, "read", r.text)
        r = client.get(f"{base}/{rid}/_history/1", headers=headers)
        assert r.status_code == (200 if "vread" in codes else 405), (rtype, "vread", r.text)
        if "vread" in codes:
            assert r.json()["meta"]["versionId"] == "1"

        version = 2 if "update" in codes else 1
        for fmt in patch_formats:
            if fmt == "application/json-patch+json":
                patch: Any = [{"op": "add", "path": "/language", "value": "en"}]
            else:
                patch = {"language": "de"}
            r = client.patch(f"{base}/{rid}", json=patch, headers={**headers, "Content-Type": fmt})
            if "patch" in codes:
                patched = _check(r, 200, f"{rtype} patch {fmt}")
                version += 1
                assert patched["meta"]["versionId"] == str(version)
                assert patched["language"] == ("en" if isinstance(patch, list) else "de")
            else:
                assert r.status_code == 405, (rtype, "patch", r.status_code)
        assert ("patch" in codes) == (bool(patch_formats) and rtype not in READ_ONLY_TYPES)

        r = client.get(f"{base}/{rid}/_history", headers=headers)
        if "history-instance" in codes:
            history = _check(r, 200, f"{rtype} history")
            assert history["type"] == "history" and history["total"] == version
        else:
            assert r.status_code == 405

        r = client.get(base, params={"_id": rid}, headers=headers)
        if "search-type" in codes:
            assert _ids(_check(r, 200, f"{rtype} search")) == {f"{rtype}/{rid}"}
        else:
            assert r.status_code == 405

        # Conditional interactions, as advertised.
        if res.get("conditionalCreate"):
            r = client.post(base, json=body, headers={**headers, "If-None-Exist": f"_id={rid}"})
            assert _check(r, 200, f"{rtype} conditional create")["id"] == rid
        if res.get("conditionalUpdate"):
            r = client.put(f"{base}?_id={rid}", json=sample(rid), headers=headers)
            assert _check(r, 200, f"{rtype} conditional update")["id"] == rid
        mode = res.get("conditionalDelete", "not-supported")
        assert mode in ("not-supported", "single", "multiple")
        if mode != "not-supported":
            twin_a, twin_b = sample(f"{rid}-a"), sample(f"{rid}-b")
            for twin in (twin_a, twin_b):
                _check(client.put(f"{base}/{twin['id']}", json=twin, headers=headers), 201, "twin")
            r = client.delete(f"{base}?_id={rid}-a,{rid}-b", headers=headers)
            if mode == "single":
                _check(r, 412, f"{rtype} conditional delete of two")
                _check(client.delete(f"{base}/{rid}-b", headers=headers), 204, "delete twin")
                r = client.delete(f"{base}?_id={rid}-a,{rid}-b", headers=headers)
            assert r.status_code in (200, 204), (rtype, r.text)
            _check(client.get(f"{base}/{rid}-a", headers=headers), 410, "conditionally deleted")
        else:
            r = client.delete(f"{base}?_id={rid}", headers=headers)
            assert r.status_code in (404, 405), (rtype, "conditional delete", r.status_code)

        r = client.delete(f"{base}/{rid}", headers=headers)
        if "delete" in codes:
            assert r.status_code == 204, (rtype, "delete", r.text)
            _check(client.get(f"{base}/{rid}", headers=headers), 410, f"{rtype} deleted")
        else:
            assert r.status_code == 405
    wait_idle(client, headers)


def test_system_interactions(
    client: TestClient, headers: dict[str, str], statement: dict[str, Any]
) -> None:
    codes = {i["code"] for i in statement["rest"][0].get("interaction", [])}
    assert codes <= {"transaction", "batch"}
    for kind in ("transaction", "batch"):
        bundle = {
            "resourceType": "Bundle",
            "type": kind,
            "entry": [
                {
                    "resource": _patient(f"cap-{kind}"),
                    "request": {"method": "PUT", "url": f"Patient/cap-{kind}"},
                }
            ],
        }
        r = client.post("/fhir", json=bundle, headers=headers)
        if kind in codes:
            assert _check(r, 200, kind)["type"] == f"{kind}-response"
        else:
            assert r.status_code in (400, 405, 422)


@pytest.fixture
def seeded(client: TestClient, headers: dict[str, str], settings: Settings) -> dict[str, str]:
    """One sample of every type, linked: the Observation, Condition, Flag and request are
    about the Patient, the request is about the Flag."""
    ids = {}
    for rtype, make in SAMPLES.items():
        rid = FIXED_IDS.get(rtype, f"cap-{rtype.lower()}")
        if rtype in READ_ONLY_TYPES:
            _store_directly(settings, rtype, rid, make(rid))
            ids[rtype] = rid
            continue
        r = client.put(f"/fhir/{rtype}/{rid}", json=make(rid), headers=headers)
        assert r.status_code == 201, (rtype, r.text)
        ids[rtype] = rid
    wait_idle(client, headers)
    return ids


def test_every_advertised_search_parameter_answers_as_advertised(
    client: TestClient,
    headers: dict[str, str],
    statement: dict[str, Any],
    seeded: dict[str, str],
) -> None:
    common = [p["name"] for p in statement["rest"][0]["searchParam"]]
    assert {"_id", "_lastUpdated"} <= set(common)
    for res in _resources(statement):
        rtype = res["type"]
        rid = seeded[rtype]
        me = f"{rtype}/{rid}"
        names = [p["name"] for p in res["searchParam"]]
        names += [n for n in common if n in ("_id", "_lastUpdated")]
        for name in names:
            hit, miss = _values(rtype, name, rid)
            found = _check(
                client.get(f"/fhir/{rtype}", params={name: hit}, headers=headers),
                200,
                f"{rtype}?{name}",
            )
            assert me in _ids(found), (rtype, name, hit)
            if not miss.startswith("ne"):
                none = _check(
                    client.get(f"/fhir/{rtype}", params={name: miss}, headers=headers), 200, name
                )
                assert me not in _ids(none), (rtype, name, miss)
        # _count and _offset page through the matches.
        if "_count" in common:
            page = _check(client.get(f"/fhir/{rtype}?_count=0", headers=headers), 200, "_count")
            assert page["total"] >= 1 and "entry" not in page
        if "_offset" in common:
            total = _check(client.get(f"/fhir/{rtype}", headers=headers), 200, "all")["total"]
            past = _check(client.get(f"/fhir/{rtype}?_offset={total}", headers=headers), 200, "o")
            assert "entry" not in past
        # Every sort key the documentation lists is accepted both ways.
        doc = res["documentation"]
        keys = doc.split("_sort: ", 1)[1].split(" (", 1)[0].split(", ")
        for key in keys:
            for sort in (key, f"-{key}"):
                r = client.get(f"/fhir/{rtype}", params={"_sort": sort}, headers=headers)
                assert me in _ids(_check(r, 200, f"{rtype}?_sort={sort}"))
        # Search parameters not advertised are refused, never ignored.
        r = client.get(f"/fhir/{rtype}", params={"not-advertised": "x"}, headers=headers)
        _check(r, 400, "unknown parameter")


def test_every_advertised_include_and_revinclude_answers(
    client: TestClient,
    headers: dict[str, str],
    statement: dict[str, Any],
    seeded: dict[str, str],
) -> None:
    targets = {"patient": "Patient", "subject": "Patient", "about": "Flag"}
    checked = 0
    for res in _resources(statement):
        rtype = res["type"]
        for include in res.get("searchInclude", []):
            source, name = include.split(":")
            assert source == rtype
            r = client.get(
                f"/fhir/{rtype}",
                params={"_id": seeded[rtype], "_include": include},
                headers=headers,
            )
            target = targets[name]
            assert _ids(_check(r, 200, include), "include") == {f"{target}/{seeded[target]}"}
            checked += 1
        for revinclude in res.get("searchRevInclude", []):
            source, _name = revinclude.split(":")
            r = client.get(
                f"/fhir/{rtype}",
                params={"_id": seeded[rtype], "_revinclude": revinclude},
                headers=headers,
            )
            assert f"{source}/{seeded[source]}" in _ids(_check(r, 200, revinclude), "include")
            checked += 1
    assert checked >= 5  # Flag:subject, CommunicationRequest:subject/about, ... Flag:subject


def test_openapi_describes_each_types_search_parameters(
    client: TestClient, statement: dict[str, Any]
) -> None:
    schema = client.get("/openapi.json").json()
    for res in _resources(statement):
        op = schema["paths"][f"/fhir/{res['type']}"]["get"]
        described = {p["name"] for p in op["parameters"]}
        advertised = {p["name"] for p in res["searchParam"]} | {"_id", "_lastUpdated"}
        assert advertised <= described, res["type"]
        assert {"_count", "_offset", "_sort", "_summary", "_elements"} <= described
        if res.get("searchInclude"):
            include = next(p for p in op["parameters"] if p["name"] == "_include")
            assert include["schema"]["enum"] == sorted(res["searchInclude"])
        if res.get("searchRevInclude"):
            rev = next(p for p in op["parameters"] if p["name"] == "_revinclude")
            assert rev["schema"]["enum"] == sorted(res["searchRevInclude"])
