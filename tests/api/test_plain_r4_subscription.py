"""Issue 14 part 1: a standard R4 rest-hook Subscription, shaped exactly like the R4 spec's own
example, is accepted without the service's secret extension; its notifications go unsigned and
carry the receiver's `channel.header` values. With the secret they are signed, as before.

`R4_EXAMPLE` is `Subscription-example.json` of the HL7 package hl7.fhir.r4.examples 4.0.1
(CC0), verbatim. The test replaces only what must change to run here: the endpoint (its real
one is never contacted) by a loopback receiver, the criteria (this server notifies on alerts,
not Observations) and the `end` that has passed since 2021.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from service.config import Settings
from service.subscriptions.signing import verify
from tests.api.subscriptions.receiver import Received, Receiver, wait_until
from tests.builders import back_pain_story
from tests.builders.subscriptions import SECRET, subscription
from tests.conftest import R4Validator, wait_idle

R4_EXAMPLE: dict[str, Any] = {
    "resourceType": "Subscription",
    "id": "example",
    "text": {
        "status": "generated",
        "div": '<div xmlns="http://www.w3.org/1999/xhtml">[Put rendering here]</div>',
    },
    "status": "requested",
    "contact": [{"system": "phone", "value": "ext 4123"}],
    "end": "2021-01-01T00:00:00Z",
    "reason": "Monitor new neonatal function",
    "criteria": "Observation?code=http://loinc.org|1975-2",
    "channel": {
        "type": "rest-hook",
        "endpoint": "https://biliwatch.com/customers/mount-auburn-miu/on-result",
        "payload": "application/fhir+json",
        "header": ["Authorization: Bearer secret-token-abc-123"],
    },
}


@pytest.fixture
def settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The documented exception for the loopback receiver (ALERTS_SUBSCRIPTION_ALLOWED_HOSTS),
    and quick retries."""
    monkeypatch.setenv("ALERTS_SUBSCRIPTION_ALLOWED_HOSTS", "127.0.0.1")
    monkeypatch.setenv("ALERTS_DELIVERY_BASE_DELAY_SECONDS", "0.1")
    monkeypatch.setenv("ALERTS_DELIVERY_MAX_DELAY_SECONDS", "0.4")
    monkeypatch.setenv("ALERTS_DELIVERY_TIMEOUT_SECONDS", "3")
    return settings.model_copy(update={"subscription_allowed_hosts": "127.0.0.1"})


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def _plain(endpoint: str) -> dict[str, Any]:
    body = copy.deepcopy(R4_EXAMPLE)
    del body["id"]  # a create
    body["channel"]["endpoint"] = endpoint
    body["criteria"] = "CommunicationRequest?status=active"
    body["end"] = "2099-01-01T00:00:00Z"
    return body


def _for(receiver: Receiver, sid: str) -> list[Received]:
    return [
        r
        for r in receiver.accepted()
        if r.headers.get("x-fhir-alerts-subscription") == f"Subscription/{sid}"
    ]


def test_the_r4_example_as_published_is_only_refused_for_what_this_server_cannot_do(
    client: TestClient, headers: dict[str, str]
) -> None:
    """Unchanged, the example is refused for its Observation criteria (not an alert type) and
    its public endpoint (the policy, judged on the URL alone: nothing is sent), never for a
    missing secret."""
    r = client.post("/fhir/Subscription", json=R4_EXAMPLE, headers=headers)
    assert r.status_code == 422
    text = r.text
    assert "Subscription.criteria" in text
    assert "secret" not in text


def test_plain_r4_subscription_is_accepted_and_notified_unsigned_with_its_headers(
    client: TestClient, headers: dict[str, str], receiver: Receiver, r4_validate: R4Validator
) -> None:
    r = client.post("/fhir/Subscription", json=_plain(receiver.url), headers=headers)
    assert r.status_code == 201, r.text
    stored = r.json()
    assert stored["status"] == "active"
    assert stored["channel"]["header"] == ["Authorization: Bearer secret-token-abc-123"]
    assert stored["contact"] == R4_EXAMPLE["contact"]
    sid = stored["id"]
    r4_validate([stored])

    assert client.post("/fhir", json=back_pain_story("plain-r4"), headers=headers).is_success
    wait_idle(client, headers)
    wait_until(lambda: len(_for(receiver, sid)) >= 1, what="the notification")
    [got] = _for(receiver, sid)
    assert got.headers["authorization"] == "Bearer secret-token-abc-123"
    assert "x-fhir-alerts-signature" not in got.headers
    assert got.headers["content-type"] == "application/fhir+json"
    bundle = orjson.loads(got.body)
    # No payload-content extension: plain R4 sends the resource (full-resource).
    assert bundle["type"] == "history"
    assert bundle["entry"][0]["resource"]["resourceType"] == "CommunicationRequest"


def test_with_the_secret_notifications_are_still_signed(
    client: TestClient, headers: dict[str, str], receiver: Receiver
) -> None:
    body = subscription(receiver.url, "CommunicationRequest?status=active")
    body["channel"]["header"] = ["Authorization: Bearer receiver-token"]
    r = client.post("/fhir/Subscription", json=body, headers=headers)
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    assert client.post("/fhir", json=back_pain_story("signed-r4"), headers=headers).is_success
    wait_idle(client, headers)
    wait_until(lambda: len(_for(receiver, sid)) >= 1, what="the notification")
    time.sleep(0.2)
    [got] = _for(receiver, sid)
    assert got.headers["authorization"] == "Bearer receiver-token"
    assert verify(SECRET, got.body, got.headers["x-fhir-alerts-signature"])
