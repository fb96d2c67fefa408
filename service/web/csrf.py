"""Cross-site request forgery defences for the worklist's POST forms.

Three layers, all checked on every state change (GET never changes anything):
- SameSite=Strict on the session cookie: other sites' requests arrive without it.
- The request's Origin (or, without one, its Referer) must be this server.
- A token in the form: for signed-in actions an HMAC of the server-side session's id with the
  server secret (nothing more to store, and it dies with the session); for the sign-in form,
  which has no session yet, a random value that must match a cookie set with the form (double
  submit).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from fastapi import Request, Response

FIELD = "csrf_token"
LOGIN_COOKIE = "fhir_alerts_login_csrf"
LOGIN_PATH = "/worklist/login"


def action_token(secret: str, session_id: str) -> str:
    message = f"worklist-csrf:{session_id}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def action_token_ok(secret: str, session_id: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(action_token(secret, session_id), str(given))


def same_origin(request: Request) -> bool:
    """True when Origin (preferred) or Referer names this server. Browsers send Origin on every
    POST; a request with neither is refused. Host and port are compared (not the scheme), so a
    TLS-terminating proxy that keeps the Host header does not break sign-in."""
    own = request.url.netloc.lower()
    origin = request.headers.get("origin")
    if origin is not None:
        return origin != "null" and urlsplit(origin).netloc.lower() == own
    referer = request.headers.get("referer")
    return referer is not None and urlsplit(referer).netloc.lower() == own


def new_login_token() -> str:
    return secrets.token_urlsafe(32)


def set_login_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=3600,
        path=LOGIN_PATH,
        httponly=True,
        samesite="strict",
        secure=request.app.state.settings.secure_cookies or request.url.scheme == "https",
    )


def login_token_ok(request: Request, given: str | None) -> bool:
    expected = request.cookies.get(LOGIN_COOKIE)
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))
