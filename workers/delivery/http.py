"""One HTTP POST to a receiver, with a timeout; 2xx is delivered, anything else is not.

Before connecting, the endpoint's host name is resolved once and *every* address is checked
against the endpoint policy (`service.subscriptions.endpoint_policy`); the connection then goes
to the checked address (the URL's host is replaced by it, `Host` and TLS SNI/certificate
checks keep the name), so a second DNS answer cannot send it elsewhere (DNS rebinding).
Redirects are not followed and proxies from the environment are not used: a notification (and
its signature) goes only where the subscription says.

What the delivery log keeps of a failure is the receiver's status code, or one generic
"endpoint unreachable" for anything that got no HTTP answer (refused by policy, no such name,
connection refused, filtered, timed out, TLS failure), with no duration: the log is readable by
API clients and must not work as a port scanner. The precise cause goes to the operator log.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

import httpx

from service import __version__
from service.subscriptions import endpoint_policy
from service.subscriptions.endpoint_policy import NOTHING_ALLOWED, AllowList

USER_AGENT = f"fhir-alerts/{__version__}"
UNREACHABLE = "endpoint unreachable"

Resolver = Callable[[str, int], list[str]]


@dataclass(frozen=True, slots=True)
class Result:
    ok: bool
    http_status: int | None
    error: str | None  # what the delivery log shows
    duration_ms: int  # 0 when the endpoint was unreachable (timing would tell why)
    detail: str | None = None  # for the operator log only (no URL, no body)


def system_resolve(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for host:port (TCP), in its order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def pin(endpoint: str, allow: AllowList, resolve: Resolver) -> tuple[str, str] | str:
    """(the address to connect to, the host name) or why the endpoint may not be used."""
    parts = urlsplit(endpoint)
    why = endpoint_policy.check(endpoint, None, allow)
    if why is not None:
        return why
    host = (parts.hostname or "").rstrip(".")
    if _is_literal(host):
        return host, host
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError) as exc:
        return f"name resolution failed ({type(exc).__name__})"
    why = endpoint_policy.check(endpoint, addresses, allow)
    if why is not None:
        return why
    if not addresses:
        return "the endpoint's name does not resolve"
    return addresses[0], host


def _unreachable(detail: str) -> Result:
    return Result(False, None, UNREACHABLE, 0, detail)


@lru_cache(maxsize=1)
def _tls() -> ssl.SSLContext:
    """httpx's default TLS context, built once: a client left to build its own loads the CA
    bundle every time, about 20 ms of every attempt (issue 12)."""
    return httpx.create_ssl_context(trust_env=False)


def post(
    endpoint: str,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout: float,
    allow: AllowList = NOTHING_ALLOWED,
    resolve: Resolver = system_resolve,
) -> Result:
    pinned = pin(endpoint, allow, resolve)
    if isinstance(pinned, str):
        return _unreachable(f"refused before connecting: {pinned}")
    address, host = pinned
    try:
        url = httpx.URL(endpoint)
        target = url.copy_with(host=address)
        netloc = url.netloc.decode("ascii")
    except Exception as exc:  # a malformed URL must fail the attempt, not the task
        return _unreachable(f"unusable URL ({type(exc).__name__})")
    started = time.monotonic()
    extensions = {"sni_hostname": host} if url.scheme == "https" else {}
    try:
        with httpx.Client(
            timeout=timeout, follow_redirects=False, trust_env=False, verify=_tls()
        ) as client:
            response = client.post(
                target,
                content=body,
                headers={"User-Agent": USER_AGENT, **headers, "Host": netloc},
                extensions=extensions,
            )
    except Exception as exc:  # timeout, refused, reset, TLS: one outcome for the API caller
        elapsed = int((time.monotonic() - started) * 1000)
        return _unreachable(f"{type(exc).__name__} after {elapsed} ms")
    elapsed = int((time.monotonic() - started) * 1000)
    status = response.status_code
    error = None if 200 <= status < 300 else f"HTTP {status}"
    return Result(error is None, status, error, elapsed, error)
