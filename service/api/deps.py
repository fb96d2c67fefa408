"""Dependencies as Annotated aliases: routes declare what they need, nothing more.

The dependency functions are `async def`: FastAPI runs a plain `def` dependency in the thread
pool, and four thread hops per request (settings, principal, unit of work, factory) cost more
of a single POST's CPU than its SQL. None of them blocks (token verification is one HMAC).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from service.api import verified_tokens
from service.auth import Principal, from_authorization_header, server_audiences
from service.config import Settings
from service.dry_run import Evaluator
from service.errors import FHIRError
from service.unit_of_work import UnitOfWork


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def get_factory(request: Request) -> sessionmaker[Session]:
    return request.app.state.session_factory  # type: ignore[no-any-return]


def get_principal(request: Request) -> Principal:
    secret: str = request.app.state.jwt_secret
    # Bearer tokens only. The worklist's session cookie is not accepted here (issue 10): a
    # browser sends cookies on cross-site requests, headers it cannot.
    header = request.headers.get("authorization")
    settings: Settings = request.app.state.settings
    audiences = server_audiences(settings.public_base_url, str(request.base_url))
    lifetime = settings.token_max_lifetime_seconds
    return verified_tokens.verified(
        secret,
        header,
        audiences,
        lifetime,
        lambda: from_authorization_header(
            secret, header, audiences=audiences, max_lifetime=lifetime
        ),
    )


async def principal_dependency(request: Request) -> Principal:
    """`get_principal` on the event loop (it is also called directly, e.g. by /metrics)."""
    return get_principal(request)


SettingsDep = Annotated[Settings, Depends(get_settings)]
FactoryDep = Annotated[sessionmaker[Session], Depends(get_factory)]
PrincipalDep = Annotated[Principal, Depends(principal_dependency)]


async def get_unit_of_work(request: Request) -> UnitOfWork:
    """Writes commit with their outbox rows, then nudge this process's relay (if it runs one)."""
    relay = getattr(request.app.state, "relay", None)
    return UnitOfWork(
        request.app.state.session_factory,
        after_commit=relay.nudge if relay is not None else None,
    )


async def get_evaluator(request: Request) -> Evaluator | None:
    """The dry run's rule evaluation, handed to `create_app` by the composition root."""
    return getattr(request.app.state, "evaluator", None)


UnitOfWorkDep = Annotated[UnitOfWork, Depends(get_unit_of_work)]
EvaluatorDep = Annotated[Evaluator | None, Depends(get_evaluator)]


async def read_body(request: Request, settings: Settings, *, patch: bool = False) -> bytes:
    """The request body, refusing wrong content types (415) and oversize bodies (413)
    before anything is parsed."""
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    allowed = {"application/fhir+json", "application/json", ""}
    if patch:
        allowed |= {"application/json-patch+json", "application/merge-patch+json"}
    if ctype not in allowed:
        raise FHIRError.of(
            415,
            "not-supported",
            f"Content-Type '{ctype}' is not supported; send application/fhir+json",
        )
    limit = settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise FHIRError.of(413, "too-costly", f"The body is larger than {limit} bytes")
    return await read_limited(request, limit)


async def read_limited(request: Request, limit: int) -> bytes:
    """The body as it streams in, refused (413) as soon as it passes `limit` bytes."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise FHIRError.of(413, "too-costly", f"The body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
