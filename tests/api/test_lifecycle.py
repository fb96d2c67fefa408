"""One patient through the whole alert life cycle, via the real HTTP API and worker:
open → repeat → escalate → acknowledge/close → old evidence does not reopen →
new evidence opens a new episode → retraction revokes."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.builders import ICD10CM, back_pain, breast_cancer, condition, days_ago, lab, patient
from tests.builders import transaction as tx
from tests.conftest import wait_idle

PID = "lc1"


def _post(client: TestClient, headers: dict[str, str], *resources: dict[str, Any]) -> None:
    r = client.post("/fhir", json=tx(*resources), headers=headers)
    assert r.status_code == 200, r.text
    wait_idle(client, headers)


def _all(client: TestClient, headers: dict[str, str], rtype: str) -> list[dict[str, Any]]:
    r = client.get(f"/fhir/{rtype}?patient={PID}&_count=100", headers=headers)
    return sorted(
        (e["resource"] for e in r.json().get("entry", [])), key=lambda x: x["meta"]["lastUpdated"]
    )


def _active(client: TestClient, headers: dict[str, str], rtype: str) -> list[dict[str, Any]]:
    return [r for r in _all(client, headers, rtype) if r["status"] == "active"]


def _codes(cr: dict[str, Any]) -> set[str]:
    return {c["code"] for rc in cr["reasonCode"] for c in rc["coding"]}


def _put_status(
    client: TestClient, headers: dict[str, str], res: dict[str, Any], status: str
) -> None:
    body = {**res, "status": status}
    r = client.put(
        f"/fhir/{res['resourceType']}/{res['id']}",
        json=body,
        headers={**headers, "If-Match": f'W/"{res["meta"]["versionId"]}"'},
    )
    assert r.status_code == 200, r.text
    wait_idle(client, headers)


def test_life_cycle_end_to_end(client: TestClient, headers: dict[str, str]) -> None:
    history = [patient(PID), breast_cancer(f"{PID}-bc", PID, days_ago(1000))]
    pain = back_pain(f"{PID}-bp", PID, days_ago(3))

    # open
    _post(client, headers, *history, pain)
    flags, crs = _active(client, headers, "Flag"), _active(client, headers, "CommunicationRequest")
    assert len(flags) == 1 and len(crs) == 1
    assert crs[0]["priority"] == "urgent" and _codes(crs[0]) == {"new-back-pain"}
    first_flag = flags[0]

    # repeat: the same data again changes nothing
    _post(client, headers, *history, pain)
    assert _all(client, headers, "Flag") == [first_flag]
    assert _all(client, headers, "CommunicationRequest") == crs

    # escalate: a neurological deficit (difficulty walking) → stat, a new request
    deficit = condition(f"{PID}-neuro", PID, "R26.2", ICD10CM, onset=days_ago(1))
    _post(client, headers, deficit)
    active = _active(client, headers, "CommunicationRequest")
    assert len(active) == 1 and active[0]["priority"] == "stat"
    assert _codes(active[0]) == {"new-back-pain", "suspected-mscc"}
    assert "MSCC" in active[0]["payload"][0]["contentString"]
    superseded = next(
        c for c in _all(client, headers, "CommunicationRequest") if c["id"] == crs[0]["id"]
    )
    assert superseded["status"] == "revoked"
    flag = _active(client, headers, "Flag")[0]
    assert flag["id"] == first_flag["id"]
    cited = {
        e["valueReference"]["reference"]
        for e in flag["extension"]
        if e["url"].endswith("flag-detail")
    }
    assert cited == {f"Condition/{PID}-bp", f"Condition/{PID}-neuro"}

    # acknowledge, then close
    _put_status(client, headers, active[0], "completed")
    assert _active(client, headers, "Flag") != []  # acknowledging does not close the episode
    _put_status(client, headers, flag, "inactive")
    assert (
        _active(client, headers, "Flag") == []
        and _active(client, headers, "CommunicationRequest") == []
    )
    closed = _all(client, headers, "Flag")[0]
    assert closed["period"].get("end")

    # old evidence does not reopen
    _post(client, headers, *history, pain, deficit)
    assert _active(client, headers, "Flag") == []

    # new evidence opens a new episode with just what it supports
    calcium = lab(f"{PID}-ca", PID, "17861-6", 12.0, "mg/dL", days_ago(0.5))
    _post(client, headers, calcium)
    flags = _active(client, headers, "Flag")
    crs = _active(client, headers, "CommunicationRequest")
    assert len(flags) == 1 and flags[0]["id"] != first_flag["id"]
    assert len(crs) == 1 and crs[0]["priority"] == "asap" and _codes(crs[0]) == {"hypercalcemia"}

    # a newer normal result does not take the alert back (only a retraction does)
    normal = lab(f"{PID}-ca2", PID, "17861-6", 9.4, "mg/dL", days_ago(0.2))
    _post(client, headers, normal)
    assert len(_active(client, headers, "Flag")) == 1
    assert len(_active(client, headers, "CommunicationRequest")) == 1

    # retraction: the calcium was entered in error → Flag inactive, request revoked with a note
    _post(client, headers, {**calcium, "status": "entered-in-error"})
    assert _active(client, headers, "Flag") == []
    revoked = next(
        c for c in _all(client, headers, "CommunicationRequest") if c["id"] == crs[0]["id"]
    )
    assert revoked["status"] == "revoked"
    assert any("error" in n["text"].lower() for n in revoked.get("note", []))
    gone = next(f for f in _all(client, headers, "Flag") if f["id"] == flags[0]["id"])
    assert gone["status"] == "inactive" and gone["period"].get("end")
