"""Verified bearer tokens are kept until they expire (service/api/verified_tokens.py): the
cache must never accept what a fresh verification would refuse."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from service.api import verified_tokens
from service.auth import mint
from service.config import Settings


def _get(client: TestClient, token: str) -> int:
    r = client.get("/fhir/Patient?_count=1", headers={"Authorization": f"Bearer {token}"})
    return int(r.status_code)


def test_a_cached_token_is_refused_once_it_expires(client: TestClient, settings: Settings) -> None:
    tok = mint(settings.signing_secret(), scope="system/*.read", ttl=2)
    assert _get(client, tok) == 200
    assert _get(client, tok) == 200  # from the cache
    assert any(key[1] == f"Bearer {tok}" for key in verified_tokens._cache)
    time.sleep(3.1)  # exp = iat + 2, iat rounded down to the second
    r = client.get("/fhir/Patient", headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 401
    assert "expired" in r.json()["issue"][0]["diagnostics"]


def test_the_cache_is_keyed_by_everything_verification_depends_on(
    client: TestClient, settings: Settings
) -> None:
    tok = mint(settings.signing_secret(), scope="system/*.read")
    assert _get(client, tok) == 200
    # The same token for another server (audience) or signed with another secret: refused.
    other_aud = mint(settings.signing_secret(), scope="system/*.read", audience="https://x/fhir")
    assert _get(client, other_aud) == 401
    assert _get(client, mint("another-secret-" + "y" * 32, scope="system/*.read")) == 401
    # A token whose signature was altered is not the cached one: verified, and refused.
    head, payload, sig = tok.split(".")
    assert _get(client, f"{head}.{payload}.{sig[:-2]}AA") == 401
    # Rights come from the token: a narrower token does not get the cached wider one's.
    narrow = mint(settings.signing_secret(), scope="system/Observation.read")
    assert _get(client, narrow) == 403
