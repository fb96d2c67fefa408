"""Transactions as FHIR R4 prescribes them (http.html "Transaction Processing Rules",
"Conditional References"): conditional creates/updates resolved first, every urn:uuid and
conditional reference rewritten to the id actually created or matched, integrity refused with
400/412 and nothing stored, request.url parsed strictly."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.builders import days_ago, lab, patient
from tests.conftest import wait_idle

ROOT = Path(__file__).resolve().parents[2]
MRN = "urn:example:mrn|WT-1"
PATIENT_URN = "urn:uuid:7f0c7a4e-0000-4000-8000-000000000001"


def readme_bundle() -> dict[str, Any]:
    """The README walk-through's transaction Bundle, exactly as the README posts it."""
    import orjson

    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- walkthrough:start -->", 1)[1].split("<!-- walkthrough:end -->")[0]
    match = re.search(r"cat > /tmp/walkthrough.json <<EOF\n(.*?)\nEOF", block, re.S)
    assert match, "the README walk-through Bundle is missing"
    body = match.group(1).replace("$DIAGNOSED", days_ago(3 * 365)[:10])
    return orjson.loads(body.replace("$PAIN", days_ago(2)))  # type: ignore[no-any-return]


def back_pain_entry(subject: str, onset: str) -> dict[str, Any]:
    """A new back-pain Condition entry, as the README Bundle writes one."""
    entry = copy.deepcopy(readme_bundle()["entry"][2])
    entry["resource"]["subject"] = {"reference": subject}
    entry["resource"]["onsetDateTime"] = onset
    # A new episode of back pain is a new record: the EHR posts it under its own identifier.
    entry["resource"]["identifier"][0]["value"] = f"back-pain-{onset}"
    entry["request"] = {"method": "POST", "url": "Condition"}
    return entry


def _post(client: TestClient, headers: dict[str, str], bundle: dict[str, Any]) -> Any:
    r = client.post("/fhir", json=bundle, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def _search(client: TestClient, headers: dict[str, str], query: str) -> list[dict[str, Any]]:
    r = client.get(f"/fhir/{query}", headers=headers)
    assert r.status_code == 200, r.text
    return [e["resource"] for e in r.json().get("entry", [])]


def _only_patient(client: TestClient, headers: dict[str, str]) -> str:
    patients = _search(client, headers, "Patient")
    assert len(patients) == 1, [p["id"] for p in patients]
    return str(patients[0]["id"])


def _evidence(flag: dict[str, Any]) -> set[str]:
    return {
        x["valueReference"]["reference"]
        for x in flag.get("extension", [])
        if x["url"].endswith("flag-detail")
    }


def _assert_one_alert_on(
    client: TestClient, headers: dict[str, str], pid: str, conditions: int
) -> dict[str, Any]:
    """Every Condition, Flag and CommunicationRequest in the store belongs to the real
    patient: nothing landed on a phantom Patient."""
    wait_idle(client, headers)
    stored = _search(client, headers, "Condition?_count=100")
    assert len(stored) == conditions
    assert {c["subject"]["reference"] for c in stored} == {f"Patient/{pid}"}
    flags = _search(client, headers, "Flag")
    assert len(flags) == 1 and flags[0]["subject"]["reference"] == f"Patient/{pid}"
    assert flags[0]["status"] == "active"
    requests = _search(client, headers, "CommunicationRequest?status=active")
    assert len(requests) == 1 and requests[0]["subject"]["reference"] == f"Patient/{pid}"
    return flags[0]


def test_readme_bundle_twice_then_new_back_pain_via_if_none_exist(
    client: TestClient, headers: dict[str, str]
) -> None:
    first = _post(client, headers, readme_bundle())
    assert [e["response"]["status"] for e in first["entry"]] == ["201 Created"] * 3
    pid = _only_patient(client, headers)
    flag = _assert_one_alert_on(client, headers, pid, conditions=2)

    again = _post(client, headers, readme_bundle())
    assert [e["response"]["status"] for e in again["entry"]] == ["200 OK"] * 3
    assert again["entry"][0]["response"]["location"].startswith(f"Patient/{pid}/")
    assert _only_patient(client, headers) == pid
    # Resent as the README promises: nothing is added, and the alert is the same one.
    again_flag = _assert_one_alert_on(client, headers, pid, conditions=2)
    assert again_flag["id"] == flag["id"]
    assert again_flag["meta"]["versionId"] == flag["meta"]["versionId"]

    # A later message: the same Patient (matched by ifNoneExist) with new back pain.
    later = readme_bundle()
    later["entry"] = [later["entry"][0], back_pain_entry(PATIENT_URN, days_ago(0.5))]
    answer = _post(client, headers, later)
    new_condition = answer["entry"][1]["response"]["location"].split("/_history")[0]
    assert _only_patient(client, headers) == pid
    stored = client.get(f"/fhir/{new_condition}", headers=headers).json()
    assert stored["subject"]["reference"] == f"Patient/{pid}"
    flag = _assert_one_alert_on(client, headers, pid, conditions=3)
    assert new_condition in _evidence(flag)  # the real patient's alert now cites it


def test_conditional_update_patient_resent(client: TestClient, headers: dict[str, str]) -> None:
    def bundle(onset: str) -> dict[str, Any]:
        b = readme_bundle()
        b["entry"][0]["request"] = {"method": "PUT", "url": f"Patient?identifier={MRN}"}
        b["entry"][2] = back_pain_entry(PATIENT_URN, onset)
        return b

    first = _post(client, headers, bundle(days_ago(2)))
    assert first["entry"][0]["response"]["status"] == "201 Created"
    pid = _only_patient(client, headers)
    _assert_one_alert_on(client, headers, pid, conditions=2)
    again = _post(client, headers, bundle(days_ago(0.5)))
    assert again["entry"][0]["response"]["status"] == "200 OK"
    assert _only_patient(client, headers) == pid
    new_condition = again["entry"][2]["response"]["location"].split("/_history")[0]
    flag = _assert_one_alert_on(client, headers, pid, conditions=3)
    assert new_condition in _evidence(flag)


def test_conditional_references_resolve_in_bundle_and_in_store(
    client: TestClient, headers: dict[str, str]
) -> None:
    ref = f"Patient?identifier={MRN}"
    first = readme_bundle()
    for entry in first["entry"][1:]:
        entry["resource"]["subject"] = {"reference": ref}
    del first["entry"][0]["fullUrl"]
    _post(client, headers, first)  # the Patient it refers to is created by this Bundle
    pid = _only_patient(client, headers)
    _assert_one_alert_on(client, headers, pid, conditions=2)

    later = {"resourceType": "Bundle", "type": "transaction"}
    later["entry"] = [back_pain_entry(ref, days_ago(0.5))]
    answer = _post(client, headers, later)
    new_condition = answer["entry"][0]["response"]["location"].split("/_history")[0]
    stored = client.get(f"/fhir/{new_condition}", headers=headers).json()
    assert stored["subject"]["reference"] == f"Patient/{pid}"
    flag = _assert_one_alert_on(client, headers, pid, conditions=3)
    assert new_condition in _evidence(flag)


def _assert_nothing_stored(client: TestClient, headers: dict[str, str]) -> None:
    for rtype in ("Patient", "Observation", "Condition"):
        assert _search(client, headers, rtype) == [], rtype
    assert client.get("/ops/backlog", headers=headers).json() == {"pending": 0}


def _observation(subject: str) -> dict[str, Any]:
    body = lab("x", "x", "17861-6", 9.5, "mg/dL", days_ago(1))
    del body["id"]
    body["subject"] = {"reference": subject}
    return body


def _new_patient_entry(full_url: str = "urn:uuid:p-1") -> dict[str, Any]:
    body = {k: v for k, v in patient("np").items() if k != "id"}
    return {"fullUrl": full_url, "resource": body, "request": {"method": "POST", "url": "Patient"}}


def _transaction(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


def _obs_entry(subject: str = "urn:uuid:p-1", url: str = "Observation") -> dict[str, Any]:
    return {"resource": _observation(subject), "request": {"method": "POST", "url": url}}


IF_NONE_EXIST = {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=urn:test:mrn|np"}
COND_PUT = "Patient?identifier=urn:test:mrn|np"
MALFORMED: dict[str, tuple[dict[str, Any], int, str]] = {
    "unresolved urn:uuid": (
        _transaction(_new_patient_entry(), _obs_entry("urn:uuid:nobody")),
        400,
        "Bundle.entry[1]",
    ),
    "duplicate fullUrl": (
        _transaction(_new_patient_entry(), _new_patient_entry()),
        400,
        "Bundle.entry[1]",
    ),
    "same PUT target twice": (
        _transaction(
            {"resource": patient("twice"), "request": {"method": "PUT", "url": "Patient/twice"}},
            {"resource": patient("twice"), "request": {"method": "PUT", "url": "Patient/twice"}},
        ),
        400,
        "Bundle.entry[1]",
    ),
    "delete and update of one resource": (
        _transaction(
            {"resource": patient("dd"), "request": {"method": "PUT", "url": "Patient/dd"}},
            {"request": {"method": "DELETE", "url": "Patient/dd"}},
        ),
        400,
        "Bundle.entry[1]",
    ),
    "two ifNoneExist creates with the same criteria": (
        _transaction(
            {**_new_patient_entry("urn:uuid:a"), "request": IF_NONE_EXIST},
            {**_new_patient_entry("urn:uuid:b"), "request": IF_NONE_EXIST},
        ),
        400,
        "Bundle.entry[1]",
    ),
    "two conditional updates with the same criteria": (
        _transaction(
            {"resource": patient("np"), "request": {"method": "PUT", "url": COND_PUT}},
            {"resource": patient("np2"), "request": {"method": "PUT", "url": COND_PUT}},
        ),
        400,
        "Bundle.entry[1]",
    ),
    "conditional reference without a match": (
        _transaction(_obs_entry("Patient?identifier=urn:test:mrn|nobody")),
        400,
        "Bundle.entry[0]",
    ),
    "resourceType disagrees with request.url": (
        _transaction(
            {"resource": patient("rt"), "request": {"method": "PUT", "url": "Observation/rt"}}
        ),
        400,
        "Bundle.entry[0]",
    ),
    "id disagrees with request.url": (
        _transaction({"resource": patient("a"), "request": {"method": "PUT", "url": "Patient/b"}}),
        400,
        "Bundle.entry[0]",
    ),
    **{
        f"request.url {url!r}": (
            _transaction(_new_patient_entry(), _obs_entry(url=url)),
            400,
            "Bundle.entry[1]",
        )
        for url in (
            "observation",
            "OBSERVATION",
            "Observation ",
            " Observation",
            "123",
            "../Observation",
            "Observation/../Observation",
            "Observation/$validate",
            "http://elsewhere.example/fhir/Observation",
            "https://testserver/fhir/Observation",
            "http://testserver/other/Observation",
            "Observations",
        )
    },
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_transactions_store_nothing(
    client: TestClient, headers: dict[str, str], case: str
) -> None:
    bundle, status, where = MALFORMED[case]
    r = client.post("/fhir", json=bundle, headers=headers)
    assert r.status_code == status, r.text
    issue = r.json()["issue"][0]
    assert issue["expression"][0] == where, issue
    assert issue["diagnostics"].startswith(where)
    _assert_nothing_stored(client, headers)


def test_several_matches_are_412_and_store_nothing(
    client: TestClient, headers: dict[str, str]
) -> None:
    for pid in ("m1", "m2"):
        body = {**patient(pid), "identifier": [{"system": "urn:test:mrn", "value": "same"}]}
        assert client.put(f"/fhir/Patient/{pid}", json=body, headers=headers).status_code == 201
    criteria = "identifier=urn:test:mrn|same"
    cases = [
        _transaction(
            {
                **_new_patient_entry(),
                "request": {"method": "POST", "url": "Patient", "ifNoneExist": criteria},
            }
        ),
        _transaction(
            {"resource": patient("np"), "request": {"method": "PUT", "url": f"Patient?{criteria}"}}
        ),
        _transaction(_obs_entry(f"Patient?{criteria}")),
        _transaction(_obs_entry(), {"request": {"method": "DELETE", "url": f"Patient?{criteria}"}}),
    ]
    for bundle in cases:
        bundle["entry"].insert(
            0, {"resource": patient("extra"), "request": {"method": "PUT", "url": "Patient/extra"}}
        )
        r = client.post("/fhir", json=bundle, headers=headers)
        assert r.status_code == 412, r.text
        assert r.json()["issue"][0]["expression"][0].startswith("Bundle.entry[")
        assert client.get("/fhir/Patient/extra", headers=headers).status_code == 404
        assert _search(client, headers, "Observation") == []
        assert len(_search(client, headers, "Patient")) == 2


@pytest.mark.parametrize(
    "url",
    [
        "http://testserver/fhir/Observation",
        "http://TestServer:80/fhir/Observation",
        "http://testserver/fhir/Observation/abs-put",
        "/Observation",
    ],
)
def test_absolute_urls_on_this_base_are_stored(
    client: TestClient, headers: dict[str, str], url: str
) -> None:
    entry = _obs_entry(url=url)
    if url.endswith("abs-put"):
        entry = {**entry, "request": {"method": "PUT", "url": url}}
        entry["resource"] = {**entry["resource"], "id": "abs-put"}
    answer = _post(client, headers, _transaction(_new_patient_entry(), entry))
    status = answer["entry"][1]["response"]["status"]
    assert status == "201 Created", answer
    obs = _search(client, headers, "Observation")
    assert len(obs) == 1
    pid = answer["entry"][0]["response"]["location"].split("/")[1]
    assert obs[0]["subject"]["reference"] == f"Patient/{pid}"


def test_absolute_full_url_references_are_rewritten(
    client: TestClient, headers: dict[str, str]
) -> None:
    """A POSTed entry whose fullUrl is on this base: references to it, absolute or relative,
    point at the id the server assigned."""
    full = "http://testserver/fhir/Patient/client-side-id"
    answer = _post(
        client,
        headers,
        _transaction(
            _new_patient_entry(full), _obs_entry(full), _obs_entry("Patient/client-side-id")
        ),
    )
    pid = answer["entry"][0]["response"]["location"].split("/")[1]
    assert pid != "client-side-id"
    refs = {o["subject"]["reference"] for o in _search(client, headers, "Observation")}
    assert refs == {f"Patient/{pid}"}


def test_unserved_types_still_skipped(client: TestClient, headers: dict[str, str]) -> None:
    claim = {
        "fullUrl": "urn:uuid:claim-1",
        "resource": {"resourceType": "Claim", "status": "active"},
        "request": {"method": "POST", "url": "Claim"},
    }
    obs = _obs_entry()
    obs["resource"]["basedOn"] = [{"reference": "urn:uuid:claim-1"}]
    answer = _post(client, headers, _transaction(_new_patient_entry(), claim, obs))
    assert answer["entry"][1]["response"]["status"] == "200 OK"
    assert answer["entry"][1]["response"]["outcome"]["issue"][0]["severity"] == "information"
    assert answer["entry"][2]["response"]["status"] == "201 Created"


def test_batch_reports_bad_entries_one_by_one(client: TestClient, headers: dict[str, str]) -> None:
    bundle = _transaction(
        _new_patient_entry(),
        _obs_entry(url="observation"),
        _obs_entry("urn:uuid:nobody"),
        _obs_entry("Patient?identifier=urn:test:mrn|nobody"),
        _obs_entry(),
    )
    bundle["type"] = "batch"
    answer = _post(client, headers, bundle)
    statuses = [e["response"]["status"] for e in answer["entry"]]
    assert statuses == ["201 Created", "400", "400", "400", "201 Created"]
    for i in (1, 2, 3):
        issue = answer["entry"][i]["response"]["outcome"]["issue"][0]
        assert issue["expression"][0] == f"Bundle.entry[{i}]"
    assert len(_search(client, headers, "Observation")) == 1


def test_dry_run_resolves_like_a_transaction(client: TestClient, headers: dict[str, str]) -> None:
    """`$evaluate` shares the planner: conditional references to the Bundle's own Patient
    resolve (an alert for that patient), and what a transaction refuses it refuses too."""
    bundle = readme_bundle()
    for entry in bundle["entry"][1:]:
        entry["resource"]["subject"] = {"reference": f"Patient?identifier={MRN}"}
    r = client.post("/fhir/$evaluate", json=bundle, headers=headers)
    assert r.status_code == 200, r.text
    flags = [e["resource"] for e in r.json()["entry"] if e["resource"]["resourceType"] == "Flag"]
    assert len(flags) == 1
    assert re.fullmatch(r"Patient/[0-9a-f-]{36}", flags[0]["subject"]["reference"])
    bad = _transaction(_new_patient_entry(), _obs_entry("urn:uuid:nobody"))
    r = client.post("/fhir/$evaluate", json=bad, headers=headers)
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"][0] == "Bundle.entry[1]"
    assert client.get("/ops/backlog", headers=headers).json() == {"pending": 0}
