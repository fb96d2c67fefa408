"""Worklist sign-in: deployment-configured nurses, and a session cookie holding an API token.

The cookie carries the same kind of JWT the API accepts (`service.auth.mint`), scoped to what a
nurse does on the worklist, so the page and the FHIR API share one notion of "signed in" and
every write goes through the same scope checks. HttpOnly keeps it away from scripts; SameSite
Strict keeps other sites from riding on it.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

import jwt
from fastapi import Request, Response

from service.auth import Principal, mint, verify
from service.config import Settings
from service.errors import FHIRError

COOKIE = "fhir_alerts_session"
SESSION_TTL_SECONDS = 8 * 3600
SCOPE = (
    "user/Flag.* user/CommunicationRequest.* user/Patient.read "
    "user/Observation.read user/Condition.read"
)


@dataclass(frozen=True, slots=True)
class WebSession:
    principal: Principal
    token: str
    jti: str

    @property
    def username(self) -> str:
        return self.principal.subject


def configured_users(settings: Settings) -> dict[str, str]:
    """`ALERTS_WORKLIST_USERS`: "user:password" pairs, comma separated. A password may hold
    ':' (only the first one separates); spaces around a user or password are ignored, and so
    are entries without a user or a password."""
    users: dict[str, str] = {}
    for entry in settings.worklist_users.split(","):
        user, sep, password = entry.partition(":")
        user, password = user.strip(), password.strip()
        if sep and user and password:
            users[user] = password
    return users


def credentials_ok(users: dict[str, str], username: str, password: str) -> bool:
    """Constant-time comparison against every configured pair, so timing reveals neither which
    users exist nor how much of a password matched."""
    given_user, given_password = username.encode(), password.encode()
    ok = False
    for user, expected in users.items():
        user_ok = hmac.compare_digest(given_user, user.encode())
        password_ok = hmac.compare_digest(given_password, expected.encode())
        ok |= user_ok and password_ok
    return ok


def mint_session(settings: Settings, username: str) -> str:
    return mint(settings.signing_secret(), scope=SCOPE, ttl=SESSION_TTL_SECONDS, subject=username)


def current_session(request: Request) -> WebSession | None:
    """The signed-in nurse, or None: no cookie, a bad or expired token, or a user no longer
    configured (removing a user from the deployment ends their worklist sessions)."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    secret: str = request.app.state.jwt_secret
    try:
        principal = verify(secret, token)
    except FHIRError:
        return None
    settings: Settings = request.app.state.settings
    if principal.subject not in configured_users(settings):
        return None
    # The signature was checked by `verify`; this only reads the jti claim it covered.
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        return None
    return WebSession(principal, token, jti)


def set_session_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=SESSION_TTL_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
