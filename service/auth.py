"""Bearer JWTs with SMART-style system scopes.

Scopes: `system/<Type|*>.<read|write|*>` (SMART v1) and v2 letters (`.rs`, `.cud`, `.cruds`).
`user/` scopes are treated like `system/` ones: the worklist session of a signed-in nurse
carries `user/...` scopes. Tokens are HS256, signed with the configured or generated secret.

Every token names its audience (`aud`): the FHIR base it is meant for. A token minted for
another deployment, or by the SMART token endpoint of another server sharing the secret, is
refused. Locally minted tokens (`fhir-alerts token`, `fhir-alerts replay`) carry the public
base when one is configured, else `LOCAL_AUDIENCE`, which a server accepts only while it has
no public base configured (the embedded default). No token may live longer (exp - iat) than
the configured maximum: a leaked token stays useful for a bounded time.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import jwt

from service.errors import FHIRError

Interaction = Literal["read", "search", "create", "update", "delete"]
_V2_LETTER: dict[Interaction, str] = {
    "create": "c",
    "read": "r",
    "update": "u",
    "delete": "d",
    "search": "s",
}
_V1: dict[Interaction, str] = {
    "read": "read",
    "search": "read",
    "create": "write",
    "update": "write",
    "delete": "write",
}
ISSUER = "fhir-alerts"
ALGORITHM = "HS256"
# The audience of tokens minted for a server that has no public base configured.
LOCAL_AUDIENCE = "urn:fhir-alerts:local"
# exp - iat may not exceed this unless the caller passes its own maximum (settings).
DEFAULT_MAX_LIFETIME_SECONDS = 24 * 3600
# HS256 keys shorter than the hash output (32 bytes) weaken the MAC (RFC 7518 §3.2).
MIN_SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    scopes: frozenset[str]

    def allows(self, resource_type: str, interaction: Interaction) -> bool:
        for scope in self.scopes:
            context, _, rest = scope.partition("/")
            if context not in ("system", "user") or "." not in rest:
                continue
            rtype, _, perm = rest.partition(".")
            if rtype not in ("*", resource_type):
                continue
            if perm in ("*", _V1[interaction]):
                return True
            if perm and set(perm) <= set("cruds") and _V2_LETTER[interaction] in perm:
                return True
        return False

    def require(self, resource_type: str, interaction: Interaction) -> None:
        if not self.allows(resource_type, interaction):
            raise FHIRError.of(
                403,
                "forbidden",
                f"The token has no scope allowing {interaction} on {resource_type}",
            )


def mint(
    secret: str,
    *,
    scope: str = "system/*.*",
    ttl: int = 3600,
    subject: str = "fhir-alerts-cli",
    audience: str | None = None,
) -> str:
    """A bearer token for `audience` (a FHIR base; None = `LOCAL_AUDIENCE`)."""
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": subject,
        "aud": audience or LOCAL_AUDIENCE,
        "scope": scope,
        "iat": now,
        "exp": now + ttl,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def server_audiences(public_base_url: str | None, request_base_url: str) -> tuple[str, ...]:
    """The audiences a server accepts: its configured public FHIR base only; without one, the
    FHIR base the request reached and `LOCAL_AUDIENCE` (locally minted tokens)."""
    if public_base_url:
        return (fhir_base(public_base_url),)
    return (fhir_base(request_base_url), LOCAL_AUDIENCE)


def fhir_base(service_root: str) -> str:
    """`https://host[/prefix]` (or with a trailing slash) -> `https://host[/prefix]/fhir`."""
    return service_root.rstrip("/") + "/fhir"


def _unauthorized(msg: str) -> FHIRError:
    return FHIRError.of(
        401,
        "login",
        msg,
        headers={"WWW-Authenticate": 'Bearer realm="fhir-alerts", error="invalid_token"'},
    )


def verify(
    secret: str,
    token: str,
    *,
    audiences: Iterable[str] = (LOCAL_AUDIENCE,),
    max_lifetime: int = DEFAULT_MAX_LIFETIME_SECONDS,
) -> Principal:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            audience=list(audiences),
            options={"require": ["exp", "iat", "iss", "sub", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise _unauthorized("The bearer token has expired") from None
    except jwt.InvalidAudienceError:
        raise _unauthorized("The bearer token is meant for another server (aud)") from None
    except jwt.PyJWTError:
        raise _unauthorized("The bearer token is not valid") from None
    exp, iat = claims["exp"], claims["iat"]
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (exp, iat))
    if not numbers or exp - iat > max_lifetime:
        raise _unauthorized(f"The bearer token lives longer than {max_lifetime} seconds")
    scope = claims.get("scope", "")
    if not isinstance(scope, str):
        raise _unauthorized("The bearer token's scope claim is not a string")
    return Principal(str(claims["sub"]), frozenset(scope.split()))


def from_authorization_header(
    secret: str,
    header: str | None,
    *,
    audiences: Iterable[str] = (LOCAL_AUDIENCE,),
    max_lifetime: int = DEFAULT_MAX_LIFETIME_SECONDS,
) -> Principal:
    if not header:
        raise FHIRError.of(
            401,
            "login",
            "Authorization: Bearer <token> is required",
            headers={"WWW-Authenticate": 'Bearer realm="fhir-alerts"'},
        )
    kind, _, token = header.partition(" ")
    if kind.lower() != "bearer" or not token.strip():
        raise _unauthorized("Only Bearer tokens are accepted")
    return verify(secret, token.strip(), audiences=audiences, max_lifetime=max_lifetime)
