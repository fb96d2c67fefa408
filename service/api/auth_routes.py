"""SMART Backend Services: `POST /auth/token` (client credentials with a signed client
assertion) and `GET /.well-known/smart-configuration` (discovery).

EHRs get tokens without ever holding the service's signing secret: each registered client
(`ALERTS_CLIENTS`) proves itself with a JWT signed by its own private key, and receives a
short-lived bearer token for this server's FHIR base, scoped to the intersection of what it
asked for and what it is registered for. Responses and errors follow OAuth 2.0 (RFC 6749
§5.1, §5.2), not FHIR: these are the OAuth endpoints, read by OAuth client libraries.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from service import auth, auth_scopes
from service.auth_assertions import (
    ASSERTION_TYPE,
    SIGNING_ALGORITHMS,
    OAuthError,
    invalid_client,
    read_header,
    verify_assertion,
)
from service.auth_clients import KeyResolver, KeysUnavailable, RegisteredClient, load_registry
from service.config import Settings
from service.fhir.registry import SEARCH_PARAMS
from service.store import client_assertions
from service.store.db import transaction

log = logging.getLogger(__name__)
router = APIRouter()

TOKEN_PATH = "/auth/token"
MAX_FORM_BYTES = 64 * 1024
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def install(app: FastAPI, settings: Settings) -> None:
    """Load the client registry (a bad `ALERTS_CLIENTS` stops the start) and add the routes."""
    app.state.smart_clients = load_registry(settings.clients)
    app.state.smart_keys = KeyResolver(
        timeout=settings.jwks_timeout_seconds, cache_seconds=settings.jwks_cache_seconds
    )
    app.include_router(router)


def service_root(settings: Settings, request: Request) -> str:
    """The public root of this service: configured, else the URL the request reached."""
    return (settings.public_base_url or str(request.base_url)).rstrip("/")


def _oauth_error(exc: OAuthError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=_NO_STORE)


async def _form(request: Request) -> dict[str, str]:
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "send application/x-www-form-urlencoded")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise OAuthError("invalid_request", "the request body is too large")
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "the body is not form-encoded") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:  # RFC 6749 §3.2: parameters must not repeat
            raise OAuthError("invalid_request", f"parameter {name} is repeated")
        form[name] = value
    return form


def _required(form: dict[str, str], name: str) -> str:
    value = form.get(name, "").strip()
    if not value:
        raise OAuthError("invalid_request", f"parameter {name} is required")
    return value


def _authenticate(
    clients: dict[str, RegisteredClient],
    keys: KeyResolver,
    factory: sessionmaker[Session],
    assertion: str,
    token_url: str,
) -> RegisteredClient:
    """The registered client that signed this assertion, its jti now spent."""
    header = read_header(assertion)
    client = clients.get(header.client_id)
    if client is None:
        raise invalid_client("unknown client_id")
    try:
        key = keys.key(client, header.kid)
    except KeysUnavailable as exc:
        log.warning("SMART client %s: keys unavailable: %s", client.client_id, exc)
        raise invalid_client(f"the client's keys are unavailable: {exc}") from None
    if key is None:
        raise invalid_client("the client has no registered key with this kid")
    verified = verify_assertion(assertion, header, key, token_url=token_url)
    now = datetime.now(UTC).replace(tzinfo=None)
    with transaction(factory) as session:
        client_assertions.delete_expired(session, now)
        fresh = client_assertions.record_use(
            session, verified.client_id, verified.jti, verified.expires_at
        )
    if not fresh:
        raise invalid_client("client_assertion's jti was already used")
    return client


@router.post(TOKEN_PATH, include_in_schema=True)
async def token(request: Request) -> JSONResponse:
    settings: Settings = request.app.state.settings
    root = service_root(settings, request)
    try:
        form = await _form(request)
        grant_type = _required(form, "grant_type")
        if grant_type != "client_credentials":
            raise OAuthError("unsupported_grant_type", "only client_credentials is supported")
        if _required(form, "client_assertion_type") != ASSERTION_TYPE:
            raise invalid_client(f"client_assertion_type must be {ASSERTION_TYPE}")
        assertion = _required(form, "client_assertion")
        asked = _required(form, "scope")
        client = await run_in_threadpool(
            _authenticate,
            request.app.state.smart_clients,
            request.app.state.smart_keys,
            request.app.state.session_factory,
            assertion,
            root + TOKEN_PATH,
        )
        granted = auth_scopes.grant(asked, client.scope)
        if not granted:
            raise OAuthError("invalid_scope", "none of the requested scopes is granted")
    except OAuthError as exc:
        return _oauth_error(exc)
    ttl = min(settings.access_token_ttl_seconds, settings.token_max_lifetime_seconds)
    scope = " ".join(granted)
    access_token = auth.mint(
        request.app.state.jwt_secret,
        scope=scope,
        ttl=ttl,
        subject=client.client_id,
        audience=auth.fhir_base(root),
    )
    log.info("SMART token issued to %s (%s)", client.client_id, scope)
    body = {"access_token": access_token, "token_type": "bearer", "expires_in": ttl, "scope": scope}
    return JSONResponse(body, headers=_NO_STORE)


def scopes_supported() -> list[str]:
    """The scopes a registration may grant: per served type and wildcard, v2 and v1."""
    out = ["system/*.rs", "system/*.cruds", "system/*.read", "system/*.write", "system/*.*"]
    for rtype in sorted(SEARCH_PARAMS):
        out += [f"system/{rtype}.rs", f"system/{rtype}.cud", f"system/{rtype}.cruds"]
    return out


@router.get("/.well-known/smart-configuration")
@router.get("/fhir/.well-known/smart-configuration")  # SMART discovery is relative to the base
def smart_configuration(request: Request) -> JSONResponse:
    settings: Settings = request.app.state.settings
    root = service_root(settings, request)
    document: dict[str, Any] = {
        "token_endpoint": root + TOKEN_PATH,
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": list(SIGNING_ALGORITHMS),
        "scopes_supported": scopes_supported(),
        "capabilities": ["client-confidential-asymmetric", "permission-v1", "permission-v2"],
    }
    return JSONResponse(document, headers={"Cache-Control": "max-age=300"})
