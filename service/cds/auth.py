"""Who is calling a CDS service: the CDS Hooks 2.0 JWT (`Authorization: Bearer <jwt>`).

The EHR signs a short-lived JWT with its own private key: `iss` (= `sub`) is a `client_id`
registered in `ALERTS_CLIENTS` (the registry of SMART Backend Services, with the client's
JWKS), `aud` is the URL of the CDS service called, `kid` names the key, `alg` is RS384 or
ES384, `iat` is given, `exp` at most five minutes ahead, and `jti` is never used twice. The
checks are those of a SMART client assertion (service/auth_assertions.py), which has the same
claims; replay is refused through the same `client_assertions` table. Anything else is 401.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import jwt
from sqlalchemy.orm import Session, sessionmaker

from service.auth import Principal
from service.auth_assertions import OAuthError, read_header, verify_assertion
from service.auth_clients import KeyResolver, KeysUnavailable, RegisteredClient
from service.store import client_assertions
from service.store.db import transaction

log = logging.getLogger(__name__)


class CdsAuthError(Exception):
    """The request is not from a registered EHR (401)."""


@dataclass(frozen=True, slots=True)
class CdsCaller:
    client: RegisteredClient

    @property
    def principal(self) -> Principal:
        """Reads and the dismiss write run with the client's registered scopes, as its SMART
        tokens would."""
        return Principal(subject=self.client.client_id, scopes=frozenset(self.client.scope.split()))


def bearer(authorization: str | None) -> str:
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise CdsAuthError("a CDS Hooks JWT is required (Authorization: Bearer <jwt>)")
    return value.strip()


def authenticate(
    clients: dict[str, RegisteredClient],
    keys: KeyResolver,
    factory: sessionmaker[Session],
    authorization: str | None,
    service_url: str,
) -> CdsCaller:
    """The registered client that signed this JWT for `service_url`; its jti is now spent."""
    token = bearer(authorization)
    try:
        header = read_header(token)
        client = clients.get(header.client_id)
        if client is None:
            raise CdsAuthError("the JWT's iss is not a registered client")
        try:
            key = keys.key(client, header.kid)
        except KeysUnavailable as exc:
            log.warning("CDS client %s: keys unavailable: %s", client.client_id, exc)
            raise CdsAuthError("the client's keys are unavailable") from None
        if key is None:
            raise CdsAuthError("the client has no registered key with this kid")
        verified = verify_assertion(token, header, key, token_url=service_url)
        # CDS Hooks 2.0 also requires `iat` (the signature is verified: the claims are real).
        if not isinstance(jwt.decode(token, options={"verify_signature": False}).get("iat"), int):
            raise CdsAuthError("the JWT has no iat")
    except OAuthError as exc:
        raise CdsAuthError(exc.description.replace("client_assertion", "JWT")) from None
    now = datetime.now(UTC).replace(tzinfo=None)
    with transaction(factory) as session:
        client_assertions.delete_expired(session, now)
        fresh = client_assertions.record_use(
            session, verified.client_id, verified.jti, verified.expires_at
        )
    if not fresh:
        raise CdsAuthError("the JWT's jti was already used")
    return CdsCaller(client)
