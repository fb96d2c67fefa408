"""Where a Subscription may send notifications: one pure decision, no I/O.

A rest-hook endpoint is a URL the *client* chooses and the *server* connects to, so without a
policy any token holder can make the service reach its own loopback, the cloud metadata address
(169.254.169.254), or hosts on the private network behind it (SSRF). The rule:

- only `http` and `https`;
- every address the host stands for must be globally routable: loopback, link-local, private
  (RFC 1918, fc00::/7), shared (CGNAT 100.64/10), multicast, unspecified, documentation and
  reserved ranges are refused, also inside IPv4-mapped, IPv4-compatible, 6to4 and NAT64 IPv6
  forms;
- the only exceptions are the operator's `ALERTS_SUBSCRIPTION_ALLOWED_HOSTS` (host names,
  addresses or CIDRs; none by default).

`check` is called twice: when a Subscription is written (no DNS: the URL alone, so literal
addresses and `localhost` are refused with 422 there), and before every delivery with the
addresses the name resolves to *now*, the one the connection is then pinned to (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_V4_BLOCKED: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "an unspecified ('this network') address"),
    ("10.0.0.0/8", "a private address"),
    ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
    ("127.0.0.0/8", "a loopback address"),
    ("169.254.0.0/16", "a link-local address"),
    ("172.16.0.0/12", "a private address"),
    ("192.0.0.0/24", "a reserved address"),
    ("192.0.2.0/24", "a documentation address"),
    ("192.88.99.0/24", "a reserved address"),
    ("192.168.0.0/16", "a private address"),
    ("198.18.0.0/15", "a benchmarking address"),
    ("198.51.100.0/24", "a documentation address"),
    ("203.0.113.0/24", "a documentation address"),
    ("224.0.0.0/4", "a multicast address"),
    ("240.0.0.0/4", "a reserved address"),
)
_V6_BLOCKED: tuple[tuple[str, str], ...] = (
    ("::/128", "an unspecified address"),
    ("::1/128", "a loopback address"),
    ("::/96", "an IPv4-compatible address"),
    ("64:ff9b:1::/48", "a local NAT64 address"),
    ("100::/64", "a discard address"),
    ("2001:db8::/32", "a documentation address"),
    ("fc00::/7", "a private (unique local) address"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a site-local address"),
    ("ff00::/8", "a multicast address"),
)
_BLOCKED: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(net), why) for net, why in (*_V4_BLOCKED, *_V6_BLOCKED)
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOCALHOST_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


@dataclass(frozen=True, slots=True)
class AllowList:
    """The operator's exceptions: exact host names (lower case) and address ranges."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    def allows_host(self, host: str) -> bool:
        return host in self.hosts

    def allows_address(self, address: IPAddress) -> bool:
        return any(address.version == n.version and address in n for n in self.networks)


NOTHING_ALLOWED = AllowList()


def _normal_host(host: str) -> str:
    return host.strip().lower().rstrip(".").removeprefix("[").removesuffix("]")


@lru_cache(maxsize=16)
def parse_allow_list(text: str) -> AllowList:
    """`ALERTS_SUBSCRIPTION_ALLOWED_HOSTS`: comma-separated host names, addresses or CIDRs
    (`hooks.internal, 127.0.0.1, 10.20.0.0/16, ::1`). An entry that is none of these raises
    ValueError, so a typo is a startup error rather than a silently wider policy."""
    hosts: set[str] = set()
    networks: list[IPNetwork] = []
    for raw in text.split(","):
        entry = _normal_host(raw)
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
            continue
        except ValueError:
            pass
        if (
            "/" in entry
            or ":" in entry
            or not all(label and label.replace("-", "").isalnum() for label in entry.split("."))
        ):
            raise ValueError(f"ALERTS_SUBSCRIPTION_ALLOWED_HOSTS: '{raw.strip()}' is not a host")
        hosts.add(entry)
    return AllowList(frozenset(hosts), tuple(networks))


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries to the same host (mapped, 6to4, NAT64)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_refusal(address: IPAddress, allow: AllowList = NOTHING_ALLOWED) -> str | None:
    """Why the service must not connect to this address, or None when it may."""
    if allow.allows_address(address):
        return None
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_v4(address)
        if inner is not None:
            return address_refusal(inner, allow)
    for network, why in _BLOCKED:
        if address.version == network.version and address in network:
            return why
    if not address.is_global:
        return "an address that is not globally routable"
    return None


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])  # fe80::1%eth0: the zone is no escape
    except ValueError:
        return None


def _numeric_looking(host: str) -> bool:
    """`127.1`, `2130706433`, `0x7f.0.0.1`, `017700000001`: not an address to Python but one to
    the C resolver (inet_aton). No real domain ends in a numeric label, so refuse them."""
    last = host.rsplit(".", 1)[-1]
    return last.isdigit() or (
        last.startswith("0x") and all(c in "0123456789abcdef" for c in last[2:])
    )


def check(
    url: str,
    addresses: Sequence[str] | None = None,
    allow: AllowList = NOTHING_ALLOWED,
) -> str | None:
    """Why notifications may not go to `url`, or None when they may.

    `addresses`: what the host name resolves to now (every one is checked), or None when no
    resolution was made (at write time: only the URL is judged). An IP-literal host is judged
    by itself. A host name on the allow-list is trusted whatever it resolves to.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a port out of range
    except ValueError:
        return "the endpoint is not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "only http and https endpoints are allowed"
    if not host:
        return "the endpoint has no host"
    host = _normal_host(host)
    if allow.allows_host(host):
        return None
    literal = _literal(host)
    if literal is not None:
        why = address_refusal(literal, allow)
        return f"the endpoint is {why}" if why else None
    if host in _LOCALHOST_NAMES or host.endswith(".localhost"):
        return "the endpoint is a loopback name"
    if _numeric_looking(host):
        return "the endpoint is a non-standard numeric address (write it as a.b.c.d)"
    if addresses is None:
        return None
    return addresses_refusal(addresses, allow)


def addresses_refusal(addresses: Iterable[str], allow: AllowList = NOTHING_ALLOWED) -> str | None:
    """Why a resolved name may not be used: no address, or any one of them refused."""
    seen = False
    for text in addresses:
        seen = True
        address = _literal(text)
        if address is None:
            return "the endpoint resolved to something that is not an address"
        why = address_refusal(address, allow)
        if why:
            return f"the endpoint's name resolves to {why}"
    return None if seen else "the endpoint's name does not resolve"
