"""Bearer JWTs with SMART-style system scopes.

Scopes: `system/<Type|*>.<read|write|*>` (SMART v1) and v2 letters (`.rs`, `.cud`, `.cruds`).
`user/` scopes are treated like `system/` ones: the worklist session of a signed-in nurse
carries `user/...` scopes. Tokens are HS256, signed with the configured or generated secret.
"""

from __future__ import annotations

import time
import uuid
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
    secret: str, *, scope: str = "system/*.*", ttl: int = 3600, subject: str = "fhir-alerts-cli"
) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": subject,
        "scope": scope,
        "iat": now,
        "exp": now + ttl,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def _unauthorized(msg: str) -> FHIRError:
    return FHIRError.of(
        401,
        "login",
        msg,
        headers={"WWW-Authenticate": 'Bearer realm="fhir-alerts", error="invalid_token"'},
    )


def verify(secret: str, token: str) -> Principal:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "iss", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        raise _unauthorized("The bearer token has expired") from None
    except jwt.PyJWTError:
        raise _unauthorized("The bearer token is not valid") from None
    scope = claims.get("scope", "")
    if not isinstance(scope, str):
        raise _unauthorized("The bearer token's scope claim is not a string")
    return Principal(str(claims["sub"]), frozenset(scope.split()))


def from_authorization_header(secret: str, header: str | None) -> Principal:
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
    return verify(secret, token.strip())
