"""Subscription endpoints cannot be used for SSRF (issue 10).

The address decision is one pure function, tested here on every kind of address without sending
anything anywhere. The API and delivery tests only ever point at 127.0.0.1 (the loopback test
receiver, or a closed loopback port): refusal of the other ranges is proven on the function.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.store.db import transaction
from service.store.resources import utcnow
from service.subscriptions import deliveries
from service.subscriptions.endpoint_policy import (
    NOTHING_ALLOWED,
    address_refusal,
    check,
    parse_allow_list,
)
from service.subscriptions.models import Delivery
from service.subscriptions.settings import DeliverySettings
from tests.subscriptions.helpers import subscription
from tests.subscriptions.receiver import Receiver, free_port
from workers.delivery.attempt import attempt
from workers.delivery.http import UNREACHABLE, pin, post

REFUSED = [
    # loopback
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("::1", "loopback"),
    # unspecified
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("::", "unspecified"),
    # link-local, including the cloud metadata address
    ("169.254.169.254", "link-local"),
    ("169.254.0.1", "link-local"),
    ("fe80::1", "link-local"),
    ("febf:ffff::1", "link-local"),
    # private
    ("10.0.0.1", "private"),
    ("10.255.255.255", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.0.1", "private"),
    ("192.168.255.255", "private"),
    ("fc00::1", "private"),
    ("fd12:3456:789a::1", "private"),
    # shared address space (carrier-grade NAT)
    ("100.64.0.1", "shared"),
    ("100.127.255.254", "shared"),
    # multicast and broadcast / reserved
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("ff0e::1", "multicast"),
    ("255.255.255.255", "reserved"),
    ("240.0.0.1", "reserved"),
    # documentation, benchmarking, site-local
    ("192.0.2.10", "documentation"),
    ("2001:db8::1", "documentation"),
    ("198.18.0.1", "benchmarking"),
    ("fec0::1", "site-local"),
    # IPv4 inside IPv6: mapped, compatible, 6to4, NAT64 — judged by the IPv4 they reach
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:169.254.169.254", "link-local"),
    ("::ffff:10.1.2.3", "private"),
    ("::ffff:0.0.0.0", "unspecified"),
    ("::127.0.0.1", "IPv4-compatible"),
    ("2002:7f00:1::1", "loopback"),  # 6to4 of 127.0.0.1
    ("2002:a9fe:a9fe::1", "link-local"),  # 6to4 of 169.254.169.254
    ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 of 169.254.169.254
    ("64:ff9b::c0a8:101", "private"),  # NAT64 of 192.168.1.1
    ("64:ff9b:1::1", "NAT64"),
    # not globally routable (Teredo and other IETF protocol assignments)
    ("2001::1", "not globally routable"),
]

ALLOWED = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "11.0.0.1",  # just outside 10/8
    "172.15.255.254",  # just below 172.16/12
    "172.32.0.1",  # just above 172.16/12
    "192.169.0.1",  # just outside 192.168/16
    "100.63.255.254",  # just below 100.64/10
    "100.128.0.1",  # just above 100.64/10
    "169.255.0.1",  # just outside 169.254/16
    "126.255.255.254",  # just below 127/8
    "2606:4700:4700::1111",
    "2a00:1450:4001:82a::200e",
    "::ffff:8.8.8.8",  # mapped public IPv4
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
]


@pytest.mark.parametrize(("address", "why"), REFUSED)
def test_refused_addresses(address: str, why: str) -> None:
    reason = address_refusal(ipaddress.ip_address(address))
    assert reason is not None and why in reason, (address, reason)
    # The same address as a URL host (IPv6 in brackets), and as what a name resolves to.
    host = f"[{address}]" if ":" in address else address
    by_url = check(f"https://{host}:8443/hook")
    assert by_url is not None and why in by_url
    by_name = check("https://hooks.example.org/hook", [address])
    assert by_name is not None and why in by_name


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is None
    host = f"[{address}]" if ":" in address else address
    assert check(f"https://{host}/hook") is None
    assert check("https://hooks.example.org/hook", [address]) is None


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://hooks.example.org/x", "http and https"),
        ("file:///etc/passwd", "http and https"),
        ("gopher://hooks.example.org:70/_x", "http and https"),
        ("javascript:alert(1)", "http and https"),
        ("HTTPX://hooks.example.org/", "http and https"),
        ("http:///no-host", "no host"),
        ("http://hooks.example.org:99999/", "not a valid URL"),
        ("http://localhost/hook", "loopback"),
        ("http://LocalHost./hook", "loopback"),
        ("http://ip6-localhost/hook", "loopback"),
        ("http://anything.localhost:8000/hook", "loopback"),
        ("http://127.1/hook", "numeric"),  # inet_aton short forms reach 127.0.0.1
        ("http://2130706433/hook", "numeric"),  # 127.0.0.1 as one decimal number
        ("http://0x7f.0.0.1/hook", "numeric"),
        ("http://017700000001/hook", "numeric"),
        ("http://[fe80::1%25eth0]/hook", "link-local"),  # a zone id is no escape
        ("http://user:pw@127.0.0.1:80/hook", "loopback"),  # userinfo does not hide the host
    ],
)
def test_refused_urls(url: str, why: str) -> None:
    reason = check(url)
    assert reason is not None and why in reason, (url, reason)


def test_names_are_judged_by_every_address_they_resolve_to() -> None:
    url = "https://hooks.example.org/hook"
    assert check(url) is None  # at write time (no DNS): a name is judged at delivery
    assert check(url, ["93.184.216.34"]) is None
    assert check(url, ["93.184.216.34", "2606:4700:4700::1111"]) is None
    # One bad answer among good ones refuses the name (a rebinding server mixes them).
    mixed = check(url, ["93.184.216.34", "10.0.0.7"])
    assert mixed is not None and "private" in mixed
    assert check(url, ["2606:4700:4700::1111", "::1"]) is not None
    empty = check(url, [])
    assert empty is not None and "does not resolve" in empty
    assert check(url, ["not-an-address"]) is not None


def test_the_allow_list_is_the_only_exception() -> None:
    assert parse_allow_list("") == NOTHING_ALLOWED
    assert parse_allow_list(" , ") == NOTHING_ALLOWED
    allow = parse_allow_list("127.0.0.1, 10.20.0.0/16, Hooks.Internal., ::1, fd00:1::/64")
    # addresses and CIDRs
    assert check("http://127.0.0.1:8080/hook", None, allow) is None
    assert check("http://127.0.0.2:8080/hook", None, allow) is not None
    assert check("http://[::ffff:127.0.0.1]/hook", None, allow) is None  # the same host
    assert check("http://[::1]/hook", None, allow) is None
    assert check("http://10.20.3.4/hook", None, allow) is None
    assert check("http://10.21.0.1/hook", None, allow) is not None
    assert check("http://[fd00:1::5]/hook", None, allow) is None
    assert check("http://[fd00:2::5]/hook", None, allow) is not None
    assert check("http://169.254.169.254/latest/meta-data/", None, allow) is not None
    # a name resolving into an allowed range, or outside it
    assert check("https://hooks.example.org/", ["10.20.9.9"], allow) is None
    assert check("https://hooks.example.org/", ["10.20.9.9", "10.30.0.1"], allow) is not None
    # host names: exact (case and trailing dot ignored), whatever they resolve to
    assert check("https://hooks.internal/x", ["10.9.9.9"], allow) is None
    assert check("https://HOOKS.internal./x", ["10.9.9.9"], allow) is None
    assert check("https://other.internal/x", ["10.9.9.9"], allow) is not None
    assert check("https://evil.hooks.internal/x", ["10.9.9.9"], allow) is not None
    # an allowed host does not allow other schemes
    assert check("ftp://hooks.internal/x", ["10.9.9.9"], allow) is not None
    # localhost by name only when named
    assert check("http://localhost/x", None, allow) is not None
    assert check("http://localhost/x", None, parse_allow_list("localhost")) is None


@pytest.mark.parametrize("entry", ["http://hooks.example.org", "10.0.0.0/33", "a b", "x/y", "*"])
def test_a_malformed_allow_list_entry_is_an_error(entry: str) -> None:
    with pytest.raises(ValueError, match="ALERTS_SUBSCRIPTION_ALLOWED_HOSTS"):
        parse_allow_list(entry)


def test_settings_carry_the_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTS_SUBSCRIPTION_ALLOWED_HOSTS", "hooks.internal,10.0.0.0/8")
    assert Settings().subscription_allowed_hosts == "hooks.internal,10.0.0.0/8"
    monkeypatch.delenv("ALERTS_SUBSCRIPTION_ALLOWED_HOSTS")
    assert Settings().subscription_allowed_hosts == ""


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


@pytest.fixture
def still(settings: Settings) -> Iterator[TestClient]:
    """The app with no relay running: the test hands deliveries out itself."""
    from workers.embedded import build_app

    with TestClient(build_app(settings, start_relay=False)) as c:
        yield c


def _factory(client: TestClient) -> sessionmaker[Session]:
    return client.app.state.session_factory  # type: ignore[attr-defined,no-any-return]


def _cr(cid: str) -> dict[str, Any]:
    return {
        "resourceType": "CommunicationRequest",
        "id": cid,
        "status": "active",
        "priority": "stat",
        "subject": {"reference": "Patient/ssrf"},
    }


def _deliver_once(client: TestClient, **kwargs: Any) -> str:
    with transaction(_factory(client)) as session:
        [claimed] = deliveries.claim_due(session, now=utcnow(), lease=60)
    settings = DeliverySettings(timeout_seconds=1.5)
    return attempt(_factory(client), claimed.pk, claimed.claim, settings=settings, **kwargs)


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
        with transaction(_factory(still)) as session:
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
        with transaction(_factory(still)) as session:
            claimed = deliveries.claim_due(session, now=utcnow(), lease=60)
        assert len(claimed) == 4
        resolver = CountingResolver({"policy.test": ["10.0.0.1"]})  # refused, never contacted
        for c in claimed:
            outcome = attempt(
                _factory(still),
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
