"""Managing Subscriptions through the generic FHIR routes: real app, real database."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.store.db import transaction
from service.subscriptions.models import SubscriptionSecret
from tests.builders.subscriptions import SECRET, subscription

ENDPOINT = "https://receiver.example/hook"


def _secret(client: TestClient, sid: str) -> str | None:
    with transaction(client.app.state.session_factory) as session:  # type: ignore[attr-defined]
        row = session.get(SubscriptionSecret, sid)
        return row.secret if row is not None else None


def test_create_accepts_and_activates_and_never_serves_the_secret(
    client: TestClient, headers: dict[str, str]
) -> None:
    r = client.post("/fhir/Subscription", json=subscription(ENDPOINT), headers=headers)
    assert r.status_code == 201, r.text
    body = r.json()
    sid = body["id"]
    assert body["status"] == "active"
    assert SECRET not in r.text
    assert "extension" not in body["channel"]
    assert body["channel"]["_payload"]["extension"][0]["valueCode"] == "full-resource"
    assert _secret(client, sid) == SECRET

    read = client.get(f"/fhir/Subscription/{sid}", headers=headers)
    assert read.status_code == 200 and read.json()["status"] == "active"
    history = client.get(f"/fhir/Subscription/{sid}/_history", headers=headers)
    search = client.get("/fhir/Subscription", params={"status": "active"}, headers=headers)
    assert [e["resource"]["id"] for e in search.json()["entry"]] == [sid]
    for text in (read.text, history.text, search.text):
        assert SECRET not in text


def test_metadata_lists_subscription(client: TestClient) -> None:
    cs = client.get("/fhir/metadata").json()
    types = {r["type"]: r for r in cs["rest"][0]["resource"]}
    assert "Subscription" in types
    assert {p["name"] for p in types["Subscription"]["searchParam"]} == {"status"}


def test_update_keeps_or_rotates_the_secret_and_off_is_stored(
    client: TestClient, headers: dict[str, str]
) -> None:
    sid = client.post("/fhir/Subscription", json=subscription(ENDPOINT), headers=headers).json()[
        "id"
    ]
    current = client.get(f"/fhir/Subscription/{sid}", headers=headers).json()
    current["criteria"] = "Flag?status=active"
    r = client.put(f"/fhir/Subscription/{sid}", json=current, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["criteria"] == "Flag?status=active" and r.json()["status"] == "active"
    assert _secret(client, sid) == SECRET  # omitted on update = kept

    rotated = subscription(ENDPOINT, secret="a-brand-new-secret-value", id=sid)
    assert client.put(f"/fhir/Subscription/{sid}", json=rotated, headers=headers).status_code == 200
    assert _secret(client, sid) == "a-brand-new-secret-value"

    off = {**client.get(f"/fhir/Subscription/{sid}", headers=headers).json(), "status": "off"}
    r = client.put(f"/fhir/Subscription/{sid}", json=off, headers=headers)
    assert r.status_code == 200 and r.json()["status"] == "off"

    assert client.delete(f"/fhir/Subscription/{sid}", headers=headers).status_code == 204
    assert client.get(f"/fhir/Subscription/{sid}", headers=headers).status_code == 410


def test_put_creates_with_client_id(client: TestClient, headers: dict[str, str]) -> None:
    body = subscription(ENDPOINT, id="pager-1")
    r = client.put("/fhir/Subscription/pager-1", json=body, headers=headers)
    assert r.status_code == 201 and r.json()["status"] == "active"
    # a re-create after delete without a secret is unsigned: the old key is forgotten
    client.delete("/fhir/Subscription/pager-1", headers=headers)
    again = subscription(ENDPOINT, id="pager-1", secret=None)
    assert client.put("/fhir/Subscription/pager-1", json=again, headers=headers).status_code == 201
    with transaction(client.app.state.session_factory) as session:  # type: ignore[attr-defined]
        assert session.get(SubscriptionSecret, "pager-1") is None


def _outcome(r: Any) -> tuple[int, list[str], str]:
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    return r.status_code, [i["code"] for i in body["issue"]], r.text


@pytest.mark.parametrize(
    ("change", "code", "needle"),
    [
        ({"criteria": "Observation?code=1234-5"}, "not-supported", "Subscription.criteria"),
        ({"criteria": "Flag?date=ge2024-01-01"}, "not-supported", "'date'"),
        ({"criteria": "Flag?nonsense=1"}, "not-supported", "nonsense"),
        ({"criteria": "Flag?status=active&_sort=-_lastUpdated"}, "not-supported", "_sort"),
        ({"criteria": None}, "value", "Subscription.criteria"),
        ({"status": "paused"}, "code-invalid", "Subscription.status"),
        ({"reason": None}, "value", "Subscription.reason"),
    ],
)
def test_invalid_subscriptions_are_422(
    client: TestClient, headers: dict[str, str], change: dict[str, Any], code: str, needle: str
) -> None:
    body = {k: v for k, v in {**subscription(ENDPOINT), **change}.items() if v is not None}
    r = client.post("/fhir/Subscription", json=body, headers=headers)
    status, codes, text = _outcome(r)
    assert status == 422 and code in codes and needle in text
    assert SECRET not in text
    assert client.get("/fhir/Subscription", headers=headers).json()["total"] == 0


@pytest.mark.parametrize(
    ("channel", "code"),
    [
        ({"type": "websocket"}, "not-supported"),
        ({"type": "bogus"}, "code-invalid"),
        ({"endpoint": "not a url"}, "value"),
        ({"payload": "text/csv"}, "not-supported"),
    ],
)
def test_invalid_channels_are_422(
    client: TestClient, headers: dict[str, str], channel: dict[str, Any], code: str
) -> None:
    body = subscription(ENDPOINT)
    body["channel"].update(channel)
    status, codes, _ = _outcome(client.post("/fhir/Subscription", json=body, headers=headers))
    assert status == 422 and code in codes


def test_secret_is_optional_on_create_and_a_weak_one_is_refused_unechoed(
    client: TestClient, headers: dict[str, str]
) -> None:
    # Issue 14: a plain R4 Subscription (no secret) is accepted; its notifications go unsigned.
    plain = client.post(
        "/fhir/Subscription", json=subscription(ENDPOINT, secret=None), headers=headers
    )
    assert plain.status_code == 201, plain.text
    weak = subscription(ENDPOINT, secret="tooshort")
    status, codes, text = _outcome(client.post("/fhir/Subscription", json=weak, headers=headers))
    assert status == 422 and codes == ["value"] and "tooshort" not in text


def test_scopes_apply(client: TestClient, headers: dict[str, str]) -> None:
    from service.auth import mint

    secret = client.app.state.jwt_secret  # type: ignore[attr-defined]
    reader = {**headers, "Authorization": f"Bearer {mint(secret, scope='system/Flag.read')}"}
    r = client.post("/fhir/Subscription", json=subscription(ENDPOINT), headers=reader)
    assert r.status_code == 403


def test_transaction_bundle_with_a_bad_subscription_stores_nothing(
    client: TestClient, headers: dict[str, str]
) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": subscription(ENDPOINT),
                "request": {"method": "POST", "url": "Subscription"},
            },
            {
                "resource": subscription(ENDPOINT, criteria="Patient?name=x"),
                "request": {"method": "POST", "url": "Subscription"},
            },
        ],
    }
    r = client.post("/fhir", json=bundle, headers=headers)
    assert r.status_code == 422, r.text
    assert "Bundle.entry[1]" in r.text
    assert client.get("/fhir/Subscription", headers=headers).json()["total"] == 0
