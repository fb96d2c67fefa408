"""Checking a SMART Backend Services client assertion (a `private_key_jwt`, RFC 7523).

The client signs a short-lived JWT with its private key: RS384 or ES384, `kid` naming the key
in its registered JWKS, `iss` = `sub` = its client_id, `aud` = our token URL, a fresh `jti`,
and `exp` at most five minutes ahead. The library (pyjwt with `cryptography`) does the JOSE;
this module decides which algorithms and keys are acceptable and what the claims must say.
Errors are OAuth 2.0 errors (RFC 6749 §5.2). Replay of a `jti` is checked by the caller
against the database (service/store/client_assertions.py). No I/O here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from service.auth_clients import ClientKey

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SIGNING_ALGORITHMS = ("RS384", "ES384")
MAX_ASSERTION_LIFETIME_SECONDS = 300
# Clocks of the EHR and of this server may disagree by this much.
CLOCK_SKEW_SECONDS = 30
MIN_RSA_BITS = 2048


class OAuthError(Exception):
    """An OAuth 2.0 error response: `{"error", "error_description"}` with its status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def invalid_client(description: str) -> OAuthError:
    return OAuthError("invalid_client", description, 401)


@dataclass(frozen=True, slots=True)
class AssertionHeader:
    client_id: str
    kid: str
    algorithm: str


@dataclass(frozen=True, slots=True)
class VerifiedAssertion:
    client_id: str
    jti: str
    expires_at: datetime  # naive UTC, like every stored datetime


def read_header(assertion: str) -> AssertionHeader:
    """Who claims to have signed the assertion, and with which key (not yet verified)."""
    try:
        header = jwt.get_unverified_header(assertion)
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise invalid_client("client_assertion is not a JWT") from None
    alg, kid, iss = header.get("alg"), header.get("kid"), claims.get("iss")
    if alg not in SIGNING_ALGORITHMS:
        raise invalid_client(
            f"client_assertion must be signed with {' or '.join(SIGNING_ALGORITHMS)}"
        )
    if not isinstance(kid, str) or not kid:
        raise invalid_client("client_assertion's header has no kid")
    if not isinstance(iss, str) or not iss:
        raise invalid_client("client_assertion has no iss")
    return AssertionHeader(iss, kid, str(alg))


def _check_key(key: ClientKey, algorithm: str) -> Any:
    if key.jwk.get("use", "sig") != "sig" or key.jwk.get("alg", algorithm) != algorithm:
        raise invalid_client("the client's key with this kid is not for this algorithm")
    public = key.key.key
    if algorithm == "RS384":
        if not isinstance(public, rsa.RSAPublicKey) or public.key_size < MIN_RSA_BITS:
            raise invalid_client(f"RS384 needs an RSA key of at least {MIN_RSA_BITS} bits")
    elif not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != "secp384r1":
        raise invalid_client("ES384 needs an EC key on P-384")
    return public


def verify_assertion(
    assertion: str,
    header: AssertionHeader,
    key: ClientKey,
    *,
    token_url: str,
    now: float | None = None,
) -> VerifiedAssertion:
    """The assertion's claims, once its signature and every SMART rule hold."""
    public = _check_key(key, header.algorithm)
    try:
        claims = jwt.decode(
            assertion,
            public,
            algorithms=[header.algorithm],
            audience=token_url,
            issuer=header.client_id,
            leeway=CLOCK_SKEW_SECONDS,
            options={"require": ["iss", "sub", "aud", "exp", "jti"]},
        )
    except jwt.ExpiredSignatureError:
        raise invalid_client("client_assertion has expired") from None
    except jwt.InvalidAudienceError:
        raise invalid_client(f"client_assertion's aud must be {token_url}") from None
    except jwt.PyJWTError as exc:
        raise invalid_client(f"client_assertion is not valid ({type(exc).__name__})") from None
    current = time.time() if now is None else now
    if claims["sub"] != header.client_id:
        raise invalid_client("client_assertion's sub must equal its iss (the client_id)")
    exp = claims["exp"]
    if not isinstance(exp, int | float):
        raise invalid_client("client_assertion's exp is not a number")
    if exp - current > MAX_ASSERTION_LIFETIME_SECONDS + CLOCK_SKEW_SECONDS:
        raise invalid_client(
            f"client_assertion's exp is more than {MAX_ASSERTION_LIFETIME_SECONDS} s ahead"
        )
    jti = claims["jti"]
    if not isinstance(jti, str) or not jti or len(jti) > 255:
        raise invalid_client("client_assertion's jti must be a string of 1 to 255 characters")
    expires = datetime.fromtimestamp(exp + CLOCK_SKEW_SECONDS, UTC).replace(tzinfo=None)
    return VerifiedAssertion(header.client_id, jti, expires)
