"""Dependencies as Annotated aliases: routes declare what they need, nothing more."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from service.auth import Principal, from_authorization_header, verify
from service.config import Settings
from service.errors import FHIRError
from service.store.db import transaction


def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_factory(request: Request) -> sessionmaker[Session]:
    return request.app.state.session_factory  # type: ignore[no-any-return]


def get_principal(request: Request) -> Principal:
    secret: str = request.app.state.jwt_secret
    header = request.headers.get("authorization")
    if header is None:
        # The worklist's signed-in session cookie carries a token of its own.
        cookie = request.cookies.get("fhir_alerts_session")
        if cookie:
            return verify(secret, cookie)
    return from_authorization_header(secret, header)


SettingsDep = Annotated[Settings, Depends(get_settings)]
FactoryDep = Annotated[sessionmaker[Session], Depends(get_factory)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]


class UnitOfWork:
    """Opens a transaction per call and nudges the relay after each commit."""

    def __init__(self, request: Request) -> None:
        self._factory: sessionmaker[Session] = request.app.state.session_factory
        self._relay = getattr(request.app.state, "relay", None)

    @contextmanager
    def __call__(self) -> Iterator[Session]:
        with transaction(self._factory) as session:
            yield session
        if self._relay is not None:
            self._relay.nudge()


UnitOfWorkDep = Annotated[UnitOfWork, Depends(UnitOfWork)]


async def read_body(request: Request, settings: Settings, *, patch: bool = False) -> bytes:
    """The request body, refusing wrong content types (415) and oversize bodies (413)
    before anything is parsed."""
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    allowed = {"application/fhir+json", "application/json", ""}
    if patch:
        allowed |= {"application/json-patch+json"}
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
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise FHIRError.of(413, "too-costly", f"The body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
