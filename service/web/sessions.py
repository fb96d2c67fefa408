"""Worklist sign-in sessions, kept on the server (table `web_sessions`, migration 0003).

The cookie holds only a random key (256 bits); the database keeps its SHA-256, the nurse and
the expiry. Signing out deletes the row, so a copied or signed-out cookie is refused at once
on every API process. The cookie is for the worklist's own routes only: it is not a bearer
token and `/fhir` does not accept it (the FHIR API takes `Authorization: Bearer` only), so a
page on another origin cannot ride on it there.

HttpOnly keeps it away from scripts; SameSite=Strict keeps other sites from sending it;
`Secure` is set whenever the deployment says it is served over HTTPS
(`ALERTS_SECURE_COOKIES`) or the request came in over HTTPS.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import Request, Response
from sqlalchemy import delete
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from service.auth import Principal
from service.config import Settings
from service.store.db import transaction
from service.store.models import WebSession as SessionRow
from service.store.resources import utcnow
from service.web import passwords

COOKIE = "fhir_alerts_session"
SESSION_TTL_SECONDS = 8 * 3600
SCOPE = (
    "user/Flag.* user/CommunicationRequest.* user/Patient.read "
    "user/Observation.read user/Condition.read user/AuditEvent.read"
)  # AuditEvent: "acknowledged by X at T" on the worklist comes from the audit trail
_SCOPES = frozenset(SCOPE.split())


@dataclass(frozen=True, slots=True)
class WebSession:
    principal: Principal
    key_hash: str  # names the session server-side; the CSRF token is derived from it

    @property
    def username(self) -> str:
        return self.principal.subject


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def users(request: Request) -> passwords.Users:
    """The configured users, loaded (and plain passwords hashed) once per app."""
    state = request.app.state
    loaded: passwords.Users | None = getattr(state, "worklist_users", None)
    if loaded is None:
        loaded = passwords.load(state.settings)
        state.worklist_users = loaded
    return loaded


def open_session(db: Session, username: str, now: datetime) -> str:
    """A new session for this nurse; returns the cookie value (the key itself)."""
    key = secrets.token_urlsafe(32)
    db.add(
        SessionRow(
            key_hash=key_hash(key),
            username=username,
            created_at=now,
            expires_at=now + timedelta(seconds=SESSION_TTL_SECONDS),
        )
    )
    # Expired sessions are of no use to anyone: forget them as new ones are made.
    db.execute(delete(SessionRow).where(SessionRow.expires_at <= now))
    return key


def lookup(db: Session, key: str, now: datetime) -> str | None:
    """The nurse signed in with this key, or None (unknown, signed out or expired)."""
    row = db.get(SessionRow, key_hash(key))
    if row is None or row.expires_at <= now:
        return None
    return row.username


def close_session(db: Session, key: str) -> None:
    db.execute(delete(SessionRow).where(SessionRow.key_hash == key_hash(key)))


async def current_session(request: Request) -> WebSession | None:
    """The signed-in nurse, or None: no cookie, an unknown, signed-out or expired session, or
    a user no longer configured (removing a user from the deployment ends their sessions)."""
    key = request.cookies.get(COOKIE)
    if not key or len(key) > 200:
        return None
    factory = request.app.state.session_factory

    def find() -> str | None:
        with transaction(factory) as db:
            return lookup(db, key, utcnow())

    username = await run_in_threadpool(find)
    if username is None or username not in users(request):
        return None
    return WebSession(Principal(username, _SCOPES), key_hash(key))


def _secure(request: Request) -> bool:
    settings: Settings = request.app.state.settings
    return settings.secure_cookies or request.url.scheme == "https"


def set_session_cookie(response: Response, request: Request, key: str) -> None:
    response.set_cookie(
        COOKIE,
        key,
        max_age=SESSION_TTL_SECONDS,
        path="/worklist",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        COOKIE, path="/worklist", httponly=True, samesite="strict", secure=_secure(request)
    )
