"""Registered SMART backend clients (`ALERTS_CLIENTS`) and their public keys.

The registry is a JSON file the deployment writes: `{"clients": [{"client_id": "ehr-1",
"jwks": {"keys": [...]}, "scope": "system/Observation.cu"}]}`, with `jwks_uri` instead of
`jwks` for a client that publishes (and rotates) its keys. It is read once at start, and a bad
file stops the start: a typo must not silently lock every EHR out, or let one in.

A `jwks_uri` is fetched with a short timeout, without following redirects, and kept for
`ALERTS_JWKS_CACHE_SECONDS`; an unknown `kid` fetches again (key rotation), at most every
`REFETCH_AFTER_SECONDS` so a stream of made-up kids cannot turn the server into a fetcher.
Only https URIs are accepted, except on the loopback interface (local tests and sidecars).
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import orjson

REFETCH_AFTER_SECONDS = 10.0
MAX_JWKS_BYTES = 256 * 1024


class RegistryError(ValueError):
    """The `ALERTS_CLIENTS` file cannot be used; the message says where."""


class KeysUnavailable(Exception):
    """A client's keys could not be obtained (jwks_uri down, not JSON, no usable key)."""


@dataclass(frozen=True, slots=True)
class RegisteredClient:
    client_id: str
    scope: str
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_jwks_uri(where: str, uri: str) -> None:
    parts = urlsplit(uri)
    host = parts.hostname or ""
    if not host or parts.scheme not in ("https", "http"):
        raise RegistryError(f"{where}: jwks_uri must be an https URL")
    if parts.scheme == "http" and not _is_loopback(host):
        raise RegistryError(f"{where}: jwks_uri must be https (http only on loopback)")


def parse_registry(data: Any, source: str = "ALERTS_CLIENTS") -> dict[str, RegisteredClient]:
    """Validate the registry document; every client has an id, one key source and a scope."""
    if not isinstance(data, dict) or not isinstance(data.get("clients"), list):
        raise RegistryError(f'{source}: expected {{"clients": [...]}}')
    clients: dict[str, RegisteredClient] = {}
    for i, entry in enumerate(data["clients"]):
        where = f"{source}: clients[{i}]"
        if not isinstance(entry, dict):
            raise RegistryError(f"{where} is not an object")
        client_id, scope = entry.get("client_id"), entry.get("scope")
        jwks, jwks_uri = entry.get("jwks"), entry.get("jwks_uri")
        if not isinstance(client_id, str) or not client_id.strip() or len(client_id) > 255:
            raise RegistryError(f"{where}: client_id must be a non-empty string (≤ 255)")
        if client_id in clients:
            raise RegistryError(f"{where}: client_id {client_id!r} is registered twice")
        if not isinstance(scope, str) or not scope.split():
            raise RegistryError(f"{where}: scope must be a space-separated string of scopes")
        if (jwks is None) == (jwks_uri is None):
            raise RegistryError(f"{where}: give exactly one of jwks and jwks_uri")
        if jwks is not None:
            try:
                key_set_from(jwks)
            except KeysUnavailable as exc:
                raise RegistryError(f"{where}: jwks: {exc}") from None
        else:
            if not isinstance(jwks_uri, str):
                raise RegistryError(f"{where}: jwks_uri must be a string")
            _check_jwks_uri(where, jwks_uri)
        clients[client_id] = RegisteredClient(client_id, scope, jwks, jwks_uri)
    return clients


def load_registry(path: Path | None) -> dict[str, RegisteredClient]:
    """The clients registered in `path` (`ALERTS_CLIENTS`); none when it is unset."""
    if path is None:
        return {}
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise RegistryError(f"ALERTS_CLIENTS: cannot read {path}: {exc.strerror}") from None
    except orjson.JSONDecodeError as exc:
        raise RegistryError(f"ALERTS_CLIENTS: {path} is not valid JSON ({exc})") from None
    return parse_registry(data, f"ALERTS_CLIENTS ({path})")


def key_set_from(jwks: Any) -> jwt.PyJWKSet:
    """A usable key set from a JWKS document (keys pyjwt cannot use are left out)."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise KeysUnavailable('a JWKS is {"keys": [...]}')
    try:
        return jwt.PyJWKSet.from_dict(jwks)
    except jwt.PyJWTError as exc:
        raise KeysUnavailable(f"no usable key ({exc})") from None


Fetcher = Callable[[str, float], Any]


def fetch_jwks(uri: str, timeout: float) -> Any:
    """GET a JWKS document: no redirects, a size cap, JSON only."""
    with (
        httpx.Client(timeout=timeout, follow_redirects=False) as http,
        http.stream("GET", uri, headers={"Accept": "application/json"}) as response,
    ):
        if response.status_code != 200:
            raise KeysUnavailable(f"jwks_uri answered {response.status_code}")
        body = b""
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > MAX_JWKS_BYTES:
                raise KeysUnavailable("jwks_uri document is too large")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise KeysUnavailable("jwks_uri did not return JSON") from None


@dataclass(frozen=True, slots=True)
class ClientKey:
    """One key of a client: the JWK as published (its `use`/`alg` matter) and pyjwt's view."""

    jwk: dict[str, Any]
    key: jwt.PyJWK


@dataclass(slots=True)
class _Cached:
    fetched_at: float
    jwks: dict[str, Any]


class KeyResolver:
    """The verification key for a client's `kid`: inline keys, or its jwks_uri (cached)."""

    def __init__(
        self,
        *,
        timeout: float,
        cache_seconds: float,
        fetcher: Fetcher = fetch_jwks,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._timeout, self._cache_seconds = timeout, cache_seconds
        self._fetch, self._clock = fetcher, clock
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    def key(self, client: RegisteredClient, kid: str) -> ClientKey | None:
        """The client's key with this kid, or None if it has none (KeysUnavailable when its
        keys cannot be obtained at all)."""
        if client.jwks is not None:
            return _find(client.jwks, kid)
        assert client.jwks_uri is not None
        cached = self._cached(client.jwks_uri, max_age=self._cache_seconds)
        found = _find(cached.jwks, kid)
        if found is None and self._clock() - cached.fetched_at >= REFETCH_AFTER_SECONDS:
            found = _find(self._cached(client.jwks_uri, max_age=0).jwks, kid)
        return found

    def _cached(self, uri: str, *, max_age: float) -> _Cached:
        with self._lock:
            entry = self._cache.get(uri)
            now = self._clock()
            if entry is not None and now - entry.fetched_at < max_age:
                return entry
            try:
                document = self._fetch(uri, self._timeout)
            except httpx.HTTPError as exc:
                raise KeysUnavailable(
                    f"jwks_uri could not be fetched ({type(exc).__name__})"
                ) from None
            key_set_from(document)  # at least one usable key, else KeysUnavailable
            entry = _Cached(now, document)
            self._cache[uri] = entry
            return entry


def _find(jwks: dict[str, Any], kid: str) -> ClientKey | None:
    for entry in jwks["keys"]:
        if isinstance(entry, dict) and entry.get("kid") == kid:
            try:
                return ClientKey(entry, jwt.PyJWK(entry))
            except jwt.PyJWTError:
                raise KeysUnavailable(f"the key {kid!r} is not usable") from None
    return None
