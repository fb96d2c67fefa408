"""CDS Hooks 2.0 `patient-view` end to end: real app, real database, and a CDS client written to
the spec (no PyPI client fits: HealthChain 0.16 pins fastapi < 0.138 and httpx < 0.28, which
this project is past). The client signs its JWT with its own key, registered in `ALERTS_CLIENTS`
like a SMART backend client; every response is checked against the card schema of the spec."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient
from sqlalchemy import select

import contract as c
from service.config import Settings
from service.store.db import transaction
from service.store.models import CdsFeedback
from tests.api.cds_card_schema import check_response
from tests.builders import back_pain_story, patient
from tests.builders import transaction as bundle
from tests.conftest import R4Validator, wait_idle

SERVICE = "/cds-services/bone-metastasis-alerts"
AUD = f"http://testserver{SERVICE}"
EC_KEY = ec.generate_private_key(ec.SECP384R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
STRANGER = ec.generate_private_key(ec.SECP384R1())
DISMISS_SYSTEM = f"{c.CODE_SYSTEM_BASE}/{c.DISMISS_REASON_CODE_SYSTEM_NAME}"


def _jwk(private: Any, kid: str, alg: str) -> dict[str, Any]:
    algo = jwt.algorithms.ECAlgorithm if alg == "ES384" else jwt.algorithms.RSAAlgorithm
    return {**algo.to_jwk(private.public_key(), as_dict=True), "kid": kid, "alg": alg, "use": "sig"}


def cds_jwt(key: Any = EC_KEY, *, kid: str = "ec-1", alg: str = "ES384", **overrides: Any) -> str:
    """The JWT of CDS Hooks 2.0 §Trusting CDS Clients."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": "ehr-cds",
        "sub": "ehr-cds",
        "aud": AUD,
        "iat": now,
        "exp": now + 120,
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid, "typ": "JWT"})


def auth(token: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token or cds_jwt()}", "Content-Type": "application/json"}


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    registry = {
        "clients": [
            {
                "client_id": "ehr-cds",
                "scope": "system/*.rs system/CommunicationRequest.u system/Flag.u",
                "jwks": {"keys": [_jwk(EC_KEY, "ec-1", "ES384"), _jwk(RSA_KEY, "rsa-1", "RS384")]},
            }
        ]
    }
    path = tmp_path / "clients.json"
    path.write_bytes(orjson.dumps(registry))
    return settings.model_copy(update={"clients": path})


def hook_request(patient_id: str, prefetch: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hookInstance": str(uuid.uuid4()),
        "hook": "patient-view",
        "fhirServer": "https://ehr.example.org/fhir",
        "context": {"userId": "Practitioner/123", "patientId": patient_id},
    }
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body


def call(client: TestClient, patient_id: str, **kw: Any) -> list[dict[str, Any]]:
    r = client.post(SERVICE, json=hook_request(patient_id, **kw), headers=auth())
    assert r.status_code == 200, r.text
    check_response(r.json())
    return list(r.json()["cards"])


def alert_story(client: TestClient, headers: dict[str, str], pid: str) -> dict[str, Any]:
    assert client.post("/fhir", json=back_pain_story(pid), headers=headers).is_success
    wait_idle(client, headers)
    found = client.get(
        "/fhir/CommunicationRequest", params={"patient": pid}, headers=headers
    ).json()
    [entry] = found["entry"]
    return dict(entry["resource"])


def test_discovery_needs_no_token_and_names_the_service_and_its_prefetch(
    client: TestClient,
) -> None:
    r = client.get("/cds-services")
    assert r.status_code == 200
    [service] = r.json()["services"]
    assert service["hook"] == "patient-view" and service["id"] == "bone-metastasis-alerts"
    assert service["description"] and service["title"]
    assert service["prefetch"] == {
        "patient": "Patient/{{context.patientId}}",
        "conditions": "Condition?patient={{context.patientId}}",
        "observations": "Observation?patient={{context.patientId}}&_sort=-date&_count=100",
    }


def test_no_open_alert_no_card(client: TestClient, headers: dict[str, str]) -> None:
    assert client.post("/fhir", json=bundle(patient("quiet")), headers=headers).is_success
    wait_idle(client, headers)
    assert call(client, "quiet") == []
    assert call(client, "nobody-here") == []


def test_card_for_an_open_alert_without_prefetch_reads_the_store(
    client: TestClient, headers: dict[str, str]
) -> None:
    cr = alert_story(client, headers, "cds-1")
    flag_id = cr["about"][0]["reference"].removeprefix("Flag/")
    [card] = call(client, "cds-1")
    assert card["indicator"] == "warning"  # the back-pain story is urgent
    assert len(card["summary"]) <= 140 and "New back pain" in card["summary"]
    assert card["source"]["label"] == "fhir-alerts bone-metastasis rules bone-mets-v1.1"
    assert card["links"][0]["url"] == f"http://testserver/worklist#flag-{flag_id}"
    assert "161891005 — active" in card["detail"] and "Condition/cds-1-bp" in card["detail"]
    assert [r["code"] for r in card["overrideReasons"]] == list(c.DISMISS_REASONS)


def test_prefetch_is_used_for_the_records_it_carries(
    client: TestClient, headers: dict[str, str]
) -> None:
    alert_story(client, headers, "cds-2")
    as_charted = client.get("/fhir/Condition/cds-2-bp", headers=headers).json()
    as_charted["code"] = {"text": "Low back pain as charted in the EHR"}
    prefetch = {
        "patient": client.get("/fhir/Patient/cds-2", headers=headers).json(),
        "conditions": {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": as_charted}],
        },
        "observations": None,  # the EHR could not prefetch it: nothing cited is missing
    }
    [card] = call(client, "cds-2", prefetch=prefetch)
    assert "Low back pain as charted in the EHR" in card["detail"]
    assert "161891005" not in card["detail"]


def test_feedback_override_dismisses_the_alert_with_its_reason(
    client: TestClient, headers: dict[str, str], r4_validate: R4Validator
) -> None:
    cr = alert_story(client, headers, "cds-3")
    [card] = call(client, "cds-3")
    accepted = {
        "card": card["uuid"],
        "outcome": "accepted",
        "outcomeTimestamp": "2026-11-29T10:00:00Z",
    }
    r = client.post(f"{SERVICE}/feedback", json={"feedback": [accepted]}, headers=auth())
    assert r.status_code == 200, r.text
    assert (
        client.get(f"/fhir/CommunicationRequest/{cr['id']}", headers=headers).json()["status"]
        == "active"
    )

    override = {
        "card": card["uuid"],
        "outcome": "overridden",
        "overrideReason": {
            "reason": {"system": DISMISS_SYSTEM, "code": "already-known"},
            "userComment": "seen in clinic yesterday",
        },
        "outcomeTimestamp": "2026-11-29T10:01:00Z",
    }
    r = client.post(f"{SERVICE}/feedback", json={"feedback": [override]}, headers=auth())
    assert r.status_code == 200, r.text
    wait_idle(client, headers)  # the write was evaluated like any nurse's write

    dismissed = client.get(f"/fhir/CommunicationRequest/{cr['id']}", headers=headers).json()
    assert dismissed["status"] == "completed"  # as the worklist's Dismiss does
    assert dismissed["statusReason"]["coding"] == [
        {
            "system": DISMISS_SYSTEM,
            "code": "already-known",
            "display": c.DISMISS_REASONS["already-known"],
        }
    ]
    assert dismissed["statusReason"]["text"] == "seen in clinic yesterday"
    assert dismissed["note"][-1]["authorString"] == "ehr-cds"
    flag = client.get(f"/fhir/{cr['about'][0]['reference']}", headers=headers).json()
    assert flag["status"] == "inactive" and flag["period"]["end"]
    r4_validate([dismissed, flag])
    assert call(client, "cds-3") == []  # the alert no longer shows

    with transaction(client.app.state.session_factory) as session:  # type: ignore[attr-defined]
        rows = session.scalars(
            select(CdsFeedback)
            .where(CdsFeedback.card_uuid == card["uuid"])
            .order_by(CdsFeedback.pk)
        ).all()
        got = [(r.outcome, r.reason_code, r.applied, r.request_id, r.client_id) for r in rows]
    assert got == [
        ("accepted", None, "recorded", cr["id"], "ehr-cds"),
        ("overridden", "already-known", "applied", cr["id"], "ehr-cds"),
    ]

    # The same override again: the card's alert has moved on, nothing changes.
    r = client.post(f"{SERVICE}/feedback", json={"feedback": [override]}, headers=auth())
    assert r.status_code == 200
    again = client.get(f"/fhir/CommunicationRequest/{cr['id']}", headers=headers).json()
    assert again["meta"]["versionId"] == dismissed["meta"]["versionId"]


def test_malformed_feedback_is_400(client: TestClient) -> None:
    r = client.post(
        f"{SERVICE}/feedback", json={"feedback": [{"card": "x", "outcome": "meh"}]}, headers=auth()
    )
    assert r.status_code == 400


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda: None, id="no-token"),
        pytest.param(lambda: "not-a-jwt", id="garbage"),
        pytest.param(lambda: cds_jwt(STRANGER), id="signed-by-an-unregistered-key"),
        pytest.param(lambda: cds_jwt(aud="http://testserver/cds-services"), id="wrong-aud"),
        pytest.param(lambda: cds_jwt(iss="other-ehr", sub="other-ehr"), id="unknown-iss"),
        pytest.param(lambda: cds_jwt(exp=int(time.time()) - 300), id="expired"),
        pytest.param(lambda: cds_jwt(kid="nope"), id="unknown-kid"),
        pytest.param(lambda: cds_jwt(iat=None), id="no-iat"),
        pytest.param(lambda: jwt.encode({"iss": "ehr-cds"}, "k" * 32, "HS256"), id="hs256"),
    ],
)
def test_bad_jwt_is_401(client: TestClient, headers: dict[str, str], token: Any) -> None:
    value = token()
    h = {"Content-Type": "application/json"}
    if value is not None:
        h["Authorization"] = f"Bearer {value}"
    r = client.post(SERVICE, json=hook_request("cds-x"), headers=h)
    assert r.status_code == 401, r.text
    r = client.post(f"{SERVICE}/feedback", json={"feedback": []}, headers=h)
    assert r.status_code == 401


def test_rs384_works_and_a_replayed_jti_is_401(client: TestClient) -> None:
    token = cds_jwt(RSA_KEY, kid="rsa-1", alg="RS384")
    assert client.post(SERVICE, json=hook_request("p"), headers=auth(token)).status_code == 200
    assert client.post(SERVICE, json=hook_request("p"), headers=auth(token)).status_code == 401
