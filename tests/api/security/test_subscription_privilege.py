"""A Subscription is a standing read (issue 10): writing one needs read scope on the type its
criteria name, and every delivery checks again that the subscription's owner may read it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete

from service.auth import mint
from service.store.db import transaction
from service.store.resources import utcnow
from service.subscriptions import deliveries
from service.subscriptions.models import SubscriptionOwner
from service.subscriptions.settings import DeliverySettings
from tests.api.apps import session_factory_of
from tests.api.subscriptions.receiver import Receiver
from tests.builders.subscriptions import alert_request, subscription
from workers.delivery.attempt import attempt

ENDPOINT = "https://hooks.example.org/alerts"  # accepted, never contacted by these tests


@pytest.fixture(autouse=True)
def _loopback_receivers_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTS_SUBSCRIPTION_ALLOWED_HOSTS", "127.0.0.1")


def _as(client: TestClient, scope: str, subject: str = "ehr-client") -> dict[str, str]:
    secret = client.app.state.jwt_secret  # type: ignore[attr-defined]
    token = mint(secret, scope=scope, subject=subject)
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}


SUBSCRIPTION_ONLY = ["system/Subscription.*", "system/Subscription.cruds", "user/Subscription.*"]


@pytest.mark.parametrize("scope", SUBSCRIPTION_ONLY)
@pytest.mark.parametrize(
    "criteria", ["CommunicationRequest?status=active", "Flag?status=active", "Flag"]
)
def test_subscription_scope_alone_cannot_subscribe_to_alerts(
    client: TestClient, headers: dict[str, str], scope: str, criteria: str
) -> None:
    body = subscription(ENDPOINT, criteria, content="full-resource")
    r = client.post("/fhir/Subscription", json=body, headers=_as(client, scope))
    assert r.status_code == 403, r.text
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert criteria.split("?")[0] in outcome["issue"][0]["diagnostics"]
    assert client.get("/fhir/Subscription", headers=headers).json()["total"] == 0


@pytest.mark.parametrize(
    "scope",
    [
        "system/Subscription.* system/CommunicationRequest.read",
        "system/Subscription.cruds system/CommunicationRequest.rs",
        "system/Subscription.write system/*.read",
        "system/*.*",
    ],
)
def test_read_scope_on_the_criteria_type_is_enough(client: TestClient, scope: str) -> None:
    body = subscription(ENDPOINT, "CommunicationRequest?status=active")
    r = client.post("/fhir/Subscription", json=body, headers=_as(client, scope))
    assert r.status_code == 201, r.text


def test_read_on_another_type_is_not_enough(client: TestClient) -> None:
    h = _as(client, "system/Subscription.* system/Flag.read")
    ok = client.post("/fhir/Subscription", json=subscription(ENDPOINT, "Flag"), headers=h)
    assert ok.status_code == 201
    body = subscription(ENDPOINT, "CommunicationRequest?status=active")
    assert client.post("/fhir/Subscription", json=body, headers=h).status_code == 403


def test_changing_a_subscription_needs_the_read_scope_too(
    client: TestClient, headers: dict[str, str]
) -> None:
    """PUT, conditional PUT, PATCH and a transaction Bundle: every way of writing one."""
    created = client.post(
        "/fhir/Subscription", json=subscription(ENDPOINT, "Flag?status=active"), headers=headers
    ).json()
    sid = created["id"]
    weak = _as(client, "system/Subscription.*")
    widened = {**created, "criteria": "CommunicationRequest?status=active"}
    assert client.put(f"/fhir/Subscription/{sid}", json=widened, headers=weak).status_code == 403
    # even unchanged criteria: the writer becomes the owner, so it must be able to read them
    same = {**created, "reason": "renamed"}
    assert client.put(f"/fhir/Subscription/{sid}", json=same, headers=weak).status_code == 403
    patch = [{"op": "replace", "path": "/criteria", "value": "CommunicationRequest"}]
    r = client.patch(
        f"/fhir/Subscription/{sid}",
        json=patch,
        headers={**weak, "Content-Type": "application/json-patch+json"},
    )
    assert r.status_code == 403, r.text
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": widened,
                "request": {"method": "PUT", "url": f"Subscription/{sid}"},
            }
        ],
    }
    assert client.post("/fhir", json=bundle, headers=weak).status_code == 403
    batch = {**bundle, "type": "batch"}
    r = client.post("/fhir", json=batch, headers=weak)
    assert r.status_code == 200 and r.json()["entry"][0]["response"]["status"].startswith("403")
    stored = client.get(f"/fhir/Subscription/{sid}", headers=headers).json()
    assert stored["criteria"] == "Flag?status=active" and stored["meta"]["versionId"] == "1"


def test_the_writer_is_recorded_as_owner_with_its_scopes(client: TestClient) -> None:
    scope = "system/Subscription.* system/Flag.read"
    r = client.post(
        "/fhir/Subscription",
        json=subscription(ENDPOINT, "Flag"),
        headers=_as(client, scope, subject="pager-1"),
    )
    sid = r.json()["id"]
    with transaction(client.app.state.session_factory) as session:  # type: ignore[attr-defined]
        owner = session.get(SubscriptionOwner, sid)
        assert owner is not None
        assert owner.subject == "pager-1"
        assert set(owner.scopes.split()) == set(scope.split())


# --- Delivery re-checks the owner ----------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def _cr(cid: str) -> dict[str, Any]:
    return alert_request(
        cid, "privilege", payload=[{"contentString": "Possible bone metastasis: review back pain"}]
    )


def _deliver_all(client: TestClient) -> list[str]:
    with transaction(session_factory_of(client)) as session:
        claimed = deliveries.claim_due(session, now=utcnow(), lease=60)
    return [
        attempt(session_factory_of(client), c.pk, c.claim, settings=DeliverySettings())
        for c in claimed
    ]


def _set_owner_scopes(client: TestClient, sid: str, scopes: str | None) -> None:
    with transaction(session_factory_of(client)) as session:
        if scopes is None:
            session.execute(
                delete(SubscriptionOwner).where(SubscriptionOwner.subscription_id == sid)
            )
        else:
            row = session.get(SubscriptionOwner, sid)
            assert row is not None
            row.scopes = scopes


@pytest.mark.parametrize(
    "owner_scopes",
    [
        None,  # written before owners were recorded (or by a path that recorded none)
        "system/Subscription.*",  # the owner's grant no longer covers the alerts
        "system/Subscription.* system/Flag.read",
    ],
)
def test_an_owner_without_read_scope_is_sent_nothing(
    still: TestClient,
    headers: dict[str, str],
    receiver: Receiver,
    owner_scopes: str | None,
) -> None:
    body = subscription(receiver.url, "CommunicationRequest?status=active")
    sid = still.post("/fhir/Subscription", json=body, headers=headers).json()["id"]
    _set_owner_scopes(still, sid, owner_scopes)
    still.put("/fhir/CommunicationRequest/p1", json=_cr("p1"), headers=headers)

    assert _deliver_all(still) == ["refused"]
    assert receiver.requests == []
    stored = still.get(f"/fhir/Subscription/{sid}", headers=headers).json()
    assert stored["status"] == "error"
    expected = "no recorded owner" if owner_scopes is None else "read on CommunicationRequest"
    assert stored["error"].startswith("not delivered") and expected in stored["error"]
    log = still.get(f"/ops/subscriptions/{sid}/deliveries", headers=headers).json()
    [entry] = log["deliveries"]
    assert entry["status"] == "failed" and entry["tries"] == []
    # Held while in error: a later change is recorded but not sent either.
    still.put("/fhir/CommunicationRequest/p2", json=_cr("p2"), headers=headers)
    assert _deliver_all(still) == []
    assert receiver.requests == []

    # Someone who may read alerts takes the subscription over: everything held is delivered.
    resumed = {**stored, "status": "requested"}
    resumed.pop("error")
    r = still.put(f"/fhir/Subscription/{sid}", json=resumed, headers=headers)
    assert r.status_code == 200 and r.json()["status"] == "active", r.text
    assert sorted(_deliver_all(still)) == ["success", "success"]
    assert len(receiver.accepted()) == 2


def test_an_owner_with_read_scope_is_served(
    still: TestClient, receiver: Receiver, headers: dict[str, str]
) -> None:
    h = _as(still, "system/Subscription.* system/CommunicationRequest.read")
    body = subscription(receiver.url, "CommunicationRequest?status=active")
    assert still.post("/fhir/Subscription", json=body, headers=h).status_code == 201
    still.put("/fhir/CommunicationRequest/p3", json=_cr("p3"), headers=headers)
    assert _deliver_all(still) == ["success"]
    assert len(receiver.accepted()) == 1
