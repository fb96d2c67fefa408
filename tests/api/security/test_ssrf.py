"""Subscription endpoints cannot be used for SSRF (issue 10), through the API and delivery.

The address decision is one pure function, tested on every kind of address without sending
anything anywhere in tests/unit/subscriptions/test_endpoint_policy.py. The API and delivery
tests here only ever point at 127.0.0.1 (the loopback test receiver, or a closed loopback
port): refusal of the other ranges is proven on the function.
"""

from __future__ import annotations

import socket
import threading
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from service.config import Settings
from service.store.db import transaction
from service.store.resources import utcnow
from service.subscriptions import deliveries
from service.subscriptions.endpoint_policy import (
    NOTHING_ALLOWED,
    parse_allow_list,
)
from service.subscriptions.models import Delivery
from service.subscriptions.settings import DeliverySettings
from tests.api.apps import session_factory_of
from tests.api.subscriptions.receiver import Receiver, free_port
from tests.builders.subscriptions import alert_request, subscription
from workers.delivery.attempt import attempt
from workers.delivery.http import UNREACHABLE, pin, post

# --- Writes: refused with 422 and an OperationOutcome (loopback targets only) -------------


def _outcome(r: Any) -> tuple[int, list[str], str]:
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    return (
        r.status_code,
        [e for i in body["issue"] for e in i.get("expression", [])],
        " ".join(i.get("diagnostics", "") for i in body["issue"]),
    )


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.0.0.1:{port}/hook",
        "http://localhost:{port}/hook",
        "http://[::1]:{port}/hook",
        "http://[::ffff:127.0.0.1]:{port}/hook",
        "http://127.1:{port}/hook",
    ],
)
def test_a_loopback_endpoint_is_refused_on_create(
    client: TestClient, headers: dict[str, str], endpoint: str
) -> None:
    body = subscription(endpoint.format(port=free_port()))
    status, where, text = _outcome(client.post("/fhir/Subscription", json=body, headers=headers))
    assert status == 422
    assert "Subscription.channel.endpoint" in where
    assert "ALERTS_SUBSCRIPTION_ALLOWED_HOSTS" in text
    assert client.get("/fhir/Subscription", headers=headers).json()["total"] == 0


def test_an_update_cannot_move_the_endpoint_to_loopback(
    client: TestClient, headers: dict[str, str]
) -> None:
    r = client.post(
        "/fhir/Subscription", json=subscription("https://hooks.example.org/x"), headers=headers
    )
    assert r.status_code == 201, r.text
    current = r.json()
    moved = {**current, "channel": {**current["channel"], "endpoint": "http://127.0.0.1:9/x"}}
    r = client.put(f"/fhir/Subscription/{current['id']}", json=moved, headers=headers)
    assert _outcome(r)[0] == 422
    stored = client.get(f"/fhir/Subscription/{current['id']}", headers=headers).json()
    assert stored["channel"]["endpoint"] == "https://hooks.example.org/x"
    # in a transaction Bundle too
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": subscription("http://localhost:9/x"),
                "request": {"method": "POST", "url": "Subscription"},
            }
        ],
    }
    r = client.post("/fhir", json=bundle, headers=headers)
    assert r.status_code == 422, r.text


def test_the_documented_exception_allows_loopback(
    client: TestClient, headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALERTS_SUBSCRIPTION_ALLOWED_HOSTS", "127.0.0.1")
    body = subscription(f"http://127.0.0.1:{free_port()}/hook")
    assert client.post("/fhir/Subscription", json=body, headers=headers).status_code == 201
    body = subscription(f"http://localhost:{free_port()}/hook")  # the name is not allowed
    assert client.post("/fhir/Subscription", json=body, headers=headers).status_code == 422


def test_the_exception_can_come_from_the_app_settings(
    settings: Settings, headers: dict[str, str]
) -> None:
    from workers.embedded import build_app

    configured = settings.model_copy(update={"subscription_allowed_hosts": "127.0.0.0/8"})
    with TestClient(build_app(configured, start_relay=False)) as c:
        body = subscription(f"http://127.0.0.2:{free_port()}/hook")
        assert c.post("/fhir/Subscription", json=body, headers=headers).status_code == 201
    with TestClient(build_app(settings, start_relay=False)) as c:  # another app: its own
        body = subscription(f"http://127.0.0.2:{free_port()}/hook")
        assert c.post("/fhir/Subscription", json=body, headers=headers).status_code == 422


# --- Delivery: resolve, check every address, connect to the checked one ------------------


class CountingResolver:
    """A resolver for made-up names: answers from a table and counts the questions."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    def __call__(self, host: str, _port: int) -> list[str]:
        self.calls.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(self.answers[host])


def test_pin_resolves_once_and_refuses_any_bad_address() -> None:
    allow = parse_allow_list("127.0.0.1")
    resolver = CountingResolver(
        {"hooks.test": ["127.0.0.1"], "mixed.test": ["127.0.0.1", "10.0.0.1"]}
    )
    assert pin("http://hooks.test:8080/x", allow, resolver) == ("127.0.0.1", "hooks.test")
    refused = pin("http://mixed.test:8080/x", allow, resolver)
    assert isinstance(refused, str) and "private" in refused
    missing = pin("http://nowhere.test/x", allow, resolver)
    assert isinstance(missing, str) and "resolution failed" in missing
    assert resolver.calls == ["hooks.test", "mixed.test", "nowhere.test"]
    # literal addresses are never resolved
    assert pin("http://127.0.0.1:8080/x", allow, resolver) == ("127.0.0.1", "127.0.0.1")
    assert isinstance(pin("http://127.0.0.1:8080/x", NOTHING_ALLOWED, resolver), str)
    assert len(resolver.calls) == 3


def test_the_connection_goes_to_the_checked_address() -> None:
    """The name `rebind.test` exists only in the test's resolver: the POST arrives at the
    receiver only because the connection is pinned to the address that was checked, with the
    name kept in Host (a second lookup by the HTTP client would fail or could differ)."""
    receiver = Receiver().start()
    try:
        resolver = CountingResolver({"rebind.test": ["127.0.0.1"]})
        result = post(
            f"http://rebind.test:{receiver.port}/hook",
            b"{}",
            {"Content-Type": "application/fhir+json"},
            timeout=3,
            allow=parse_allow_list("127.0.0.1"),
            resolve=resolver,
        )
        assert result.ok, result
        [got] = receiver.accepted()
        assert got.headers["host"] == f"rebind.test:{receiver.port}"
        assert resolver.calls == ["rebind.test"]
        # Without the exception the same answer is refused and nothing is sent.
        result = post(
            f"http://rebind.test:{receiver.port}/hook",
            b"{}",
            {},
            timeout=3,
            allow=NOTHING_ALLOWED,
            resolve=resolver,
        )
        assert not result.ok and result.error == UNREACHABLE
        assert len(receiver.accepted()) == 1
    finally:
        receiver.stop()


def _cr(cid: str) -> dict[str, Any]:
    return alert_request(cid, "ssrf")


def _deliver_once(client: TestClient, **kwargs: Any) -> str:
    with transaction(session_factory_of(client)) as session:
        [claimed] = deliveries.claim_due(session, now=utcnow(), lease=60)
    settings = DeliverySettings(timeout_seconds=1.5)
    return attempt(
        session_factory_of(client), claimed.pk, claimed.claim, settings=settings, **kwargs
    )


def test_a_name_that_now_resolves_to_loopback_gets_nothing(
    still: TestClient, headers: dict[str, str]
) -> None:
    """DNS rebinding at the subscription level: accepted as a name, refused at delivery when
    the name resolves to a refused address; delivered once the operator allows that address."""
    receiver = Receiver().start()
    try:
        url = f"http://hooks.test:{receiver.port}/hook"
        r = still.post("/fhir/Subscription", json=subscription(url), headers=headers)
        assert r.status_code == 201, r.text
        sid = r.json()["id"]
        still.put("/fhir/CommunicationRequest/rb1", json=_cr("rb1"), headers=headers)
        resolver = CountingResolver({"hooks.test": ["127.0.0.1"]})
        assert _deliver_once(still, allow=NOTHING_ALLOWED, resolve=resolver) == "retry"
        assert receiver.accepted() == []
        log = still.get(f"/ops/subscriptions/{sid}/deliveries", headers=headers).json()
        [entry] = log["deliveries"]
        assert entry["lastError"] == UNREACHABLE
        with transaction(session_factory_of(still)) as session:
            session.execute(update(Delivery).values(next_attempt_at=utcnow()))
        allow = parse_allow_list("127.0.0.1")
        assert _deliver_once(still, allow=allow, resolve=resolver) == "success"
        assert len(receiver.accepted()) == 1
    finally:
        receiver.stop()


def _silent_listener() -> tuple[socket.socket, int]:
    """A loopback port that accepts connections into its backlog and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock, int(sock.getsockname()[1])


def _tls_refusing_listener() -> tuple[socket.socket, int, threading.Event]:
    """A loopback port that accepts and answers a TLS hello with garbage (a TLS failure)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    stop = threading.Event()

    def serve() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            with conn:
                try:
                    conn.recv(1024)
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    pass

    threading.Thread(target=serve, daemon=True).start()
    return sock, int(sock.getsockname()[1]), stop


def test_the_delivery_log_does_not_tell_closed_from_filtered_from_tls(
    still: TestClient, headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closed port, a port that never answers (filtered-like), a TLS failure and a policy
    refusal look the same to the API caller: one generic outcome, no status, no duration."""
    monkeypatch.setenv("ALERTS_SUBSCRIPTION_ALLOWED_HOSTS", "127.0.0.1")
    silent, silent_port = _silent_listener()
    tls, tls_port, stop = _tls_refusing_listener()
    try:
        endpoints = {
            "closed": f"http://127.0.0.1:{free_port()}/hook",
            "silent": f"http://127.0.0.1:{silent_port}/hook",
            "tls": f"https://127.0.0.1:{tls_port}/hook",
            "policy": f"http://policy.test:{free_port()}/hook",
        }
        sids = {}
        for name, url in endpoints.items():
            r = still.post("/fhir/Subscription", json=subscription(url), headers=headers)
            assert r.status_code == 201, r.text
            sids[name] = r.json()["id"]
        still.put("/fhir/CommunicationRequest/ps1", json=_cr("ps1"), headers=headers)
        with transaction(session_factory_of(still)) as session:
            claimed = deliveries.claim_due(session, now=utcnow(), lease=60)
        assert len(claimed) == 4
        resolver = CountingResolver({"policy.test": ["10.0.0.1"]})  # refused, never contacted
        for c in claimed:
            outcome = attempt(
                session_factory_of(still),
                c.pk,
                c.claim,
                settings=DeliverySettings(timeout_seconds=1.5),
                resolve=resolver,
            )
            assert outcome == "retry"
        seen = []
        for name, sid in sids.items():
            r = still.get(f"/ops/subscriptions/{sid}/deliveries", headers=headers)
            assert r.status_code == 200, r.text
            text = r.text
            body = r.json()
            [entry] = body["deliveries"]
            [tried] = entry["tries"]
            started = datetime.fromisoformat(tried["started"].replace("Z", "+00:00"))
            after = datetime.fromisoformat(entry["nextAttempt"].replace("Z", "+00:00"))
            assert (after - started).total_seconds() == DeliverySettings().retry_delay(1)
            seen.append(
                (entry["lastError"], tried["error"], tried["httpStatus"], tried["durationMs"])
            )
            for leak in ("Connect", "Timeout", "SSL", "TLS", "refused", "private", "10.0.0.1"):
                assert leak not in text, (name, leak, text)
        assert seen == [(UNREACHABLE, UNREACHABLE, None, 0)] * 4, seen
    finally:
        stop.set()
        silent.close()
        tls.close()
