"""The SSRF address check of Subscription endpoints (issue 10): one pure function, tested on
every kind of address without sending anything anywhere. The API and delivery side (refusals
on write, pinning at delivery, loopback targets only) is tests/api/security/test_ssrf.py."""

from __future__ import annotations

import ipaddress

import pytest

from service.config import Settings
from service.subscriptions.endpoint_policy import (
    NOTHING_ALLOWED,
    address_refusal,
    check,
    parse_allow_list,
)

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
