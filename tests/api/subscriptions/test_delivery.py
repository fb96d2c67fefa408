"""Push delivery end to end on the embedded default: the real app and database, the in-process
worker, and a real HTTP receiver on loopback that is down, failing, or up."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from service.store.db import transaction
from service.subscriptions import deliveries
from service.subscriptions.signing import verify
from tests.api.subscriptions.receiver import Received, Receiver, wait_until
from tests.builders import back_pain_story
from tests.builders.subscriptions import SECRET, subscription
from tests.conftest import wait_idle


def delivery_log(client: TestClient, subscription_id: str) -> list[deliveries.DeliveryView]:
    with transaction(client.app.state.session_factory) as session:  # type: ignore[attr-defined]
        return deliveries.log(session, subscription_id)


def fast_backoff(monkeypatch: pytest.MonkeyPatch, *, attempts: int = 100) -> None:
    monkeypatch.setenv("ALERTS_DELIVERY_BASE_DELAY_SECONDS", "0.1")
    monkeypatch.setenv("ALERTS_DELIVERY_MAX_DELAY_SECONDS", "0.4")
    monkeypatch.setenv("ALERTS_DELIVERY_MAX_ATTEMPTS", str(attempts))
    monkeypatch.setenv("ALERTS_DELIVERY_TIMEOUT_SECONDS", "3")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def _create(client: TestClient, headers: dict[str, str], body: dict[str, Any]) -> str:
    r = client.post("/fhir/Subscription", json=body, headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "active"
    return str(r.json()["id"])


def _for(receiver: Receiver, sid: str) -> list[Received]:
    return [
        r
        for r in receiver.accepted()
        if r.headers["x-fhir-alerts-subscription"] == f"Subscription/{sid}"
    ]


def _version_of(req: Received) -> tuple[str, int]:
    """("Type/id", version) named by a notification Bundle."""
    [entry] = orjson.loads(req.body)["entry"]
    ref, _, version = entry["response"]["location"].rpartition("/_history/")
    return ref, int(version)


def _versions(
    client: TestClient, headers: dict[str, str], rtype: str, pid: str
) -> list[dict[str, Any]]:
    """Every stored version of the patient's resources of this type."""
    found = client.get(f"/fhir/{rtype}", params={"patient": pid}, headers=headers).json()
    out = []
    for e in found.get("entry", []):
        rid = e["resource"]["id"]
        hist = client.get(f"/fhir/{rtype}/{rid}/_history", headers=headers).json()
        out.extend(h["resource"] for h in hist["entry"])
    return out


def _settled(client: TestClient, sid: str) -> bool:
    log = delivery_log(client, sid)
    return bool(log) and all(d.status == "success" for d in log)


def test_receiver_down_then_up_gets_every_alert_change_exactly_once(
    client: TestClient, headers: dict[str, str], receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast_backoff(monkeypatch)
    cr_sub = _create(client, headers, subscription(receiver.url))
    flag_sub = _create(
        client,
        headers,
        subscription(receiver.url, "Flag?status=active,inactive", content="id-only"),
    )

    r = client.post("/fhir", json=back_pain_story("push1"), headers=headers)
    assert r.status_code == 200, r.text
    wait_idle(client, headers)

    # The receiver is not listening: attempts fail, are logged, and are retried.
    def retried() -> bool:
        return all(
            any(len(d.tries) >= 2 for d in delivery_log(client, s)) for s in (cr_sub, flag_sub)
        )

    wait_until(retried, what="failed attempts while the receiver is down")
    assert receiver.requests == []
    for d in delivery_log(client, cr_sub):
        assert d.status == "pending"
        assert all(t.outcome == "failed" and t.http_status is None for t in d.tries)

    receiver.start()
    wait_until(lambda: _settled(client, cr_sub) and _settled(client, flag_sub), what="delivery")
    time.sleep(0.5)  # anything extra would arrive now

    crs = _versions(client, headers, "CommunicationRequest", "push1")
    flags = _versions(client, headers, "Flag", "push1")
    assert [c["priority"] for c in crs] == ["urgent"]
    expected_crs = sorted(
        (f"CommunicationRequest/{c['id']}", int(c["meta"]["versionId"])) for c in crs
    )
    expected_flags = sorted((f"Flag/{f['id']}", int(f["meta"]["versionId"])) for f in flags)

    got = _for(receiver, cr_sub)
    assert sorted(_version_of(r) for r in got) == expected_crs  # once per change, none missing
    for req in got:
        assert verify(SECRET, req.body, req.headers["x-fhir-alerts-signature"])
        assert req.headers["content-type"] == "application/fhir+json"
        [entry] = orjson.loads(req.body)["entry"]
        assert entry["resource"]["resourceType"] == "CommunicationRequest"  # full-resource
    flag_got = _for(receiver, flag_sub)
    assert sorted(_version_of(r) for r in flag_got) == expected_flags
    for req in flag_got:
        assert verify(SECRET, req.body, req.headers["x-fhir-alerts-signature"])
        assert "resource" not in orjson.loads(req.body)["entry"][0]  # id-only
        assert b"Patient" not in req.body and b"push1" not in req.body
    ids = [r.headers["x-fhir-alerts-delivery"] for r in receiver.accepted()]
    assert len(ids) == len(set(ids))

    # The nurse acknowledges: exactly one more CommunicationRequest notification.
    cr = client.get(f"/fhir/CommunicationRequest/{crs[0]['id']}", headers=headers).json()
    before = len(got)
    r = client.put(
        f"/fhir/CommunicationRequest/{cr['id']}",
        json={**cr, "status": "completed"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    wait_idle(client, headers)
    wait_until(lambda: len(_for(receiver, cr_sub)) > before, what="the acknowledgement")
    time.sleep(0.5)
    got = _for(receiver, cr_sub)
    assert len(got) == before + 1
    last = orjson.loads(got[-1].body)["entry"][0]["resource"]
    assert (
        last["status"] == "completed" and last["meta"]["versionId"] == r.json()["meta"]["versionId"]
    )
    assert Counter(_version_of(r) for r in got).most_common(1)[0][1] == 1


def test_empty_payload_sends_no_body_and_no_patient_data(
    client: TestClient, headers: dict[str, str], receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast_backoff(monkeypatch)
    receiver.start()
    sid = _create(client, headers, subscription(receiver.url, "Flag?status=active", content=None))
    client.post("/fhir", json=back_pain_story("push-empty"), headers=headers)
    wait_idle(client, headers)
    wait_until(lambda: len(_for(receiver, sid)) >= 1, what="an empty notification")
    time.sleep(0.3)
    [req] = _for(receiver, sid)
    flag = client.get("/fhir/Flag", params={"patient": "push-empty"}, headers=headers).json()
    flag_id = flag["entry"][0]["resource"]["id"]
    assert req.body == b""
    assert "content-type" not in req.headers
    assert verify(SECRET, b"", req.headers["x-fhir-alerts-signature"])
    everything = req.path + repr(sorted(req.headers.items()))
    for secret_or_patient in ("Patient", "push-empty", flag_id, SECRET):
        assert secret_or_patient not in everything


def test_repeated_failure_puts_the_subscription_in_error_and_reactivation_delivers(
    client: TestClient, headers: dict[str, str], receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast_backoff(monkeypatch, attempts=3)
    receiver.always_fail = True
    receiver.start()
    sid = _create(client, headers, subscription(receiver.url))
    client.post("/fhir", json=back_pain_story("push-err"), headers=headers)
    wait_idle(client, headers)

    def in_error() -> bool:
        return bool(
            client.get(f"/fhir/Subscription/{sid}", headers=headers).json()["status"] == "error"
        )

    wait_until(in_error, what="the subscription to go to error")
    sub = client.get(f"/fhir/Subscription/{sid}", headers=headers).json()
    assert "3 delivery attempts failed (last: HTTP 503)" in sub["error"]
    [d] = delivery_log(client, sid)
    assert d.status == "failed" and d.attempts == 3 and d.last_error == "HTTP 503"
    assert [(t.number, t.outcome, t.http_status) for t in d.tries] == [
        (1, "failed", 503),
        (2, "failed", 503),
        (3, "failed", 503),
    ]
    assert len(receiver.requests) == 3
    # The same log over HTTP, for operators.
    log = client.get(f"/ops/subscriptions/{sid}/deliveries", headers=headers)
    assert log.status_code == 200
    [entry] = log.json()["deliveries"]
    assert entry["status"] == "failed" and entry["lastError"] == "HTTP 503"
    assert [t["httpStatus"] for t in entry["tries"]] == [503, 503, 503]
    assert "push-err" not in log.text  # references to alert resources only, no patient data
    assert client.get("/ops/subscriptions/nope/deliveries", headers=headers).status_code == 404
    assert client.get(f"/ops/subscriptions/{sid}/deliveries").status_code == 401

    # While in error a new alert change is recorded but held, not attempted.
    [cr] = [
        e["resource"]
        for e in client.get(
            "/fhir/CommunicationRequest", params={"patient": "push-err"}, headers=headers
        ).json()["entry"]
    ]
    client.put(
        f"/fhir/CommunicationRequest/{cr['id']}",
        json={**cr, "status": "completed"},
        headers=headers,
    )
    wait_idle(client, headers)
    time.sleep(0.5)
    assert len(receiver.requests) == 3
    assert [x.status for x in delivery_log(client, sid)] == ["failed", "pending"]

    # The receiver is fixed and the client asks for the subscription again: both arrive.
    receiver.always_fail = False
    r = client.put(
        f"/fhir/Subscription/{sid}", json={**sub, "status": "requested"}, headers=headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "active" and "error" not in r.json()
    wait_until(lambda: _settled(client, sid), what="held and failed deliveries")
    time.sleep(0.3)
    got = sorted(_version_of(x)[1] for x in _for(receiver, sid))
    assert got == [1, 2]
    [first, held] = delivery_log(client, sid)
    assert [t.outcome for t in first.tries] == ["failed", "failed", "failed", "success"]
    assert [t.number for t in first.tries] == [1, 2, 3, 4]
    assert [t.outcome for t in held.tries] == ["success"]


def test_off_or_deleted_subscriptions_cancel_what_is_pending(
    client: TestClient, headers: dict[str, str], receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast_backoff(monkeypatch)
    off = _create(client, headers, subscription(receiver.url, "Flag?status=active"))
    gone = _create(client, headers, subscription(receiver.url, "Flag?status=active"))
    client.post("/fhir", json=back_pain_story("push-off"), headers=headers)
    wait_idle(client, headers)
    wait_until(lambda: all(delivery_log(client, s)[0].tries for s in (off, gone)), what="attempts")
    body = client.get(f"/fhir/Subscription/{off}", headers=headers).json()
    assert (
        client.put(
            f"/fhir/Subscription/{off}", json={**body, "status": "off"}, headers=headers
        ).status_code
        == 200
    )
    assert client.delete(f"/fhir/Subscription/{gone}", headers=headers).status_code == 204
    wait_until(
        lambda: [delivery_log(client, s)[0].status for s in (off, gone)] == ["cancelled"] * 2,
        what="cancellation",
    )
    receiver.start()
    time.sleep(0.5)
    assert receiver.requests == []
