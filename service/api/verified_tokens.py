"""Bearer tokens already verified, kept until they expire.

Verifying an HS256 JWT (signature, issuer, audience, lifetimes) was about a tenth of the CPU
of a single POST, and an EHR feed sends the same token with every request. A token is cached
only after it passed the full verification (`service.auth.from_authorization_header`), keyed
by everything that verification depends on (secret, header, accepted audiences, lifetime cap),
and only until its `exp`: past it the token is verified again, and refused as expired exactly
as before. Nothing else a verification checks can change for the same token string (`nbf` and
`iat` only move from the future into the past).
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable

import orjson

from service.auth import Principal

MAX_TOKENS = 4096  # distinct live tokens kept; when full the cache starts over

_Key = tuple[str, str, tuple[str, ...], int]
_cache: dict[_Key, tuple[Principal, float]] = {}


def _expiry(header: str) -> float | None:
    """The `exp` claim of a bearer token that has just been verified (so its payload is the
    one its signature covers); None when it cannot be read (then nothing is cached)."""
    try:
        payload = header.partition(" ")[2].strip().split(".")[1]
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error, orjson.JSONDecodeError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, int | float) and not isinstance(exp, bool):
        return float(exp)
    return None


def verified(
    secret: str,
    header: str | None,
    audiences: tuple[str, ...],
    max_lifetime: int,
    verify: Callable[[], Principal],
) -> Principal:
    """The principal of `header`: from the cache while the token lives, else `verify()`
    (which raises the 401 for any token it refuses; refusals are never cached)."""
    if not header:
        return verify()
    key = (secret, header, audiences, max_lifetime)
    hit = _cache.get(key)
    if hit is not None and time.time() < hit[1]:  # PyJWT: expired once now >= exp
        return hit[0]
    principal = verify()
    exp = _expiry(header)
    if exp is not None:
        if len(_cache) >= MAX_TOKENS:
            _cache.clear()
        _cache[key] = (principal, exp)
    return principal
