"""Worklist routes: the page, its live fragment, sign-in/out, acknowledge and close.

Thin: check the session and CSRF defences, call `worklist`/`actions`, render. Alert data is
only ever rendered for a valid session; actions answer with a redirect back to the page
(POST/redirect/GET), so reloading never repeats them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from contract import DISMISS_REASONS, FINDING_CODES, PRIORITY_ORDER
from ruleset import load_config
from service.api.deps import FactoryDep, SettingsDep, UnitOfWorkDep
from service.interactions import WriteContext
from service.report import load_report
from service.store.db import transaction
from service.store.resources import utcnow
from service.web import actions, csrf, passwords, sessions, throttle
from service.web.extract import PRIORITY_WORD
from service.web.render import STATIC_TYPES, render, static_bytes
from service.web.worklist import Filters, load_worklist


@asynccontextmanager
async def _start(app: FastAPI) -> AsyncIterator[None]:
    """At start-up: hash plain-text worklist passwords (not on the first sign-in)."""
    app.state.worklist_users = await run_in_threadpool(passwords.load, app.state.settings)
    yield


router = APIRouter(prefix="/worklist", include_in_schema=False, lifespan=_start)

POLL_MS = 4000
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}
_MESSAGES: dict[str, tuple[str, str]] = {
    "acknowledged": ("ok", "Alert acknowledged."),
    "closed": ("ok", "Alert closed."),
    "snoozed": ("ok", "Alert snoozed."),
    "dismissed": ("ok", "Alert dismissed."),
    "already": ("warn", "That alert had already been acknowledged or closed."),
    "conflict": ("warn", "That alert changed since the page showed it: review it and try again."),
    "gone": ("warn", "That alert is no longer stored."),
    "forbidden": ("warn", "Your sign-in does not allow changing alerts."),
    "failed": ("warn", "The change could not be saved; please try again."),
    "invalid": ("warn", "The request was not understood; please try again."),
}
_LOGIN_NOTICES = {
    "expired": "Your session has ended. Please sign in again.",
    "signed-out": "You have signed out.",
}


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=_HEADERS)


def _to_login(reason: str | None = None) -> RedirectResponse:
    url = "/worklist/login" + (f"?reason={reason}" if reason else "")
    return RedirectResponse(url, status_code=303, headers=_HEADERS)


def _refused(status: int, why: str) -> HTMLResponse:
    """An action that failed its session or CSRF checks: a short page, no alert data."""
    return _html(render("refused.html", why=why), status)


def _ctx(session: sessions.WebSession, settings: Any) -> WriteContext:
    return WriteContext(
        session.principal,
        default_count=settings.default_page_size,
        max_count=settings.max_page_size,
    )


def _filters(request: Request) -> Filters:
    q = request.query_params
    return Filters.of(q.get("priority"), q.get("status"), q.get("q"))


async def _fragment(request: Request, session: sessions.WebSession, factory: Any) -> str:
    settings = request.app.state.settings
    ctx = _ctx(session, settings)
    filters = _filters(request)

    def run() -> str:
        now = datetime.now(UTC)
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        with transaction(factory) as db:
            worklist = load_worklist(
                db,
                ctx,
                now,
                load_config(settings.ruleset),
                settings.ack_deadline_map,
                closed_since=today if filters.status == "closed" else None,
            )
        token = csrf.action_token(request.app.state.jwt_secret, session.key_hash)
        return render(
            "_alerts.html",
            worklist=filters.apply(worklist),
            filters=filters,
            csrf_token=token,
            dismiss_reasons=DISMISS_REASONS,
        )

    return await run_in_threadpool(run)


def _version(fragment: str) -> str:
    return hashlib.sha256(fragment.encode()).hexdigest()[:20]


@router.get("")
async def page(request: Request, factory: FactoryDep, done: str | None = None) -> Response:
    session = await sessions.current_session(request)
    if session is None:
        return _to_login("expired" if request.cookies.get(sessions.COOKIE) else None)
    fragment = await _fragment(request, session, factory)
    kind, message = _MESSAGES.get(done or "", ("", ""))
    filters = _filters(request)
    query = urlencode({k: v for k, v in asdict(filters).items() if v})
    body = render(
        "worklist.html",
        fragment=Markup(fragment),  # rendered (and escaped) by the same environment
        filters=filters,
        priorities=[(p, PRIORITY_WORD[p]) for p in reversed(PRIORITY_ORDER)],
        fragment_url="/worklist/fragment" + (f"?{query}" if query else ""),
        version=_version(fragment),
        username=session.username,
        csrf_token=csrf.action_token(request.app.state.jwt_secret, session.key_hash),
        message=message,
        message_kind=kind,
        poll_ms=POLL_MS,
        updated=datetime.now(UTC),
    )
    return _html(body)


@router.get("/report")
async def report_page(request: Request, factory: FactoryDep) -> Response:
    """`service.report`'s figures (the same as `GET /ops/report`), as a page for people."""
    session = await sessions.current_session(request)
    if session is None:
        return _to_login("expired" if request.cookies.get(sessions.COOKIE) else None)

    def run() -> dict[str, Any]:
        with transaction(factory) as db:
            return load_report(db)

    figures = await run_in_threadpool(run)
    body = render(
        "report.html",
        report=figures,
        priorities=[(p, PRIORITY_WORD[p]) for p in reversed(PRIORITY_ORDER)],
        findings=FINDING_CODES,
        dismiss_reasons=DISMISS_REASONS,
        username=session.username,
        csrf_token=csrf.action_token(request.app.state.jwt_secret, session.key_hash),
        generated=datetime.now(UTC),
    )
    return _html(body)


@router.get("/fragment")
async def fragment(request: Request, factory: FactoryDep, since: str | None = None) -> Response:
    """The live part of the page; 204 when nothing changed since the version the page has."""
    session = await sessions.current_session(request)
    if session is None:
        return Response(
            "Sign-in required", status_code=401, media_type="text/plain", headers=_HEADERS
        )
    html = await _fragment(request, session, factory)
    version = _version(html)
    if since == version:
        return Response(status_code=204, headers={**_HEADERS, "X-Worklist-Version": version})
    return HTMLResponse(html, headers={**_HEADERS, "X-Worklist-Version": version})


@router.get("/login")
async def login_form(
    request: Request, settings: SettingsDep, reason: str | None = None
) -> Response:
    if await sessions.current_session(request) is not None:
        return RedirectResponse("/worklist", status_code=303, headers=_HEADERS)
    return _login_page(request, settings, notice=_LOGIN_NOTICES.get(reason or ""))


def _login_page(
    request: Request,
    settings: Any,
    *,
    notice: str | None = None,
    error: str | None = None,
    username: str = "",
    status: int = 200,
    retry_after: int = 0,
) -> HTMLResponse:
    configured = bool(sessions.users(request))
    if not configured:
        error = (
            "Sign-in is not set up on this server. An administrator must configure worklist "
            "users (ALERTS_WORKLIST_USERS)."
        )
        status = 503 if status == 200 else status
    token = csrf.new_login_token()
    body = render(
        "login.html",
        configured=configured,
        notice=notice,
        error=error,
        username=username,
        csrf_token=token,
    )
    response = _html(body, status)
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    csrf.set_login_cookie(response, request, token)
    return response


def _client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _wait_words(seconds: int) -> str:
    minutes = -(-seconds // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


@router.post("/login")
async def login(request: Request, settings: SettingsDep, factory: FactoryDep) -> Response:
    form = await request.form()
    username = str(form.get("username") or "")[:200]
    password = str(form.get("password") or "")[:1000]
    given = form.get(csrf.FIELD)
    if not csrf.same_origin(request) or not csrf.login_token_ok(request, str(given or "")):
        return _refused(403, "The sign-in form could not be verified. Reload it and try again.")
    users = sessions.users(request)
    if not users:
        return _login_page(request, settings, status=503)
    user_key = throttle.user_key(username)
    address_key = throttle.address_key(_client_address(request))

    def claim() -> int:
        """Refuse a locked user or address; else count this attempt for the user up front."""
        now = utcnow()
        with transaction(factory) as db:
            return throttle.retry_after(db, [address_key], now) or throttle.claim_attempt(
                db, user_key, throttle.PER_USER, now
            )

    def failed() -> int:
        now = utcnow()
        with transaction(factory) as db:
            limits = {address_key: throttle.PER_ADDRESS}
            return max(
                throttle.record_failure(db, limits, now), throttle.retry_after(db, [user_key], now)
            )

    def signed_in() -> str:
        now = utcnow()
        with transaction(factory) as db:
            throttle.clear(db, user_key)
            return sessions.open_session(db, username, now)

    wait = await run_in_threadpool(claim)
    if wait:  # refused before the password is checked: guessing during a lockout is useless
        return _too_many(request, settings, username, wait)
    if not await run_in_threadpool(users.check, username, password):
        wait = await run_in_threadpool(failed)
        if wait:
            return _too_many(request, settings, username, wait)
        return _login_page(
            request, settings, error="Wrong user name or password.", username=username, status=401
        )
    key = await run_in_threadpool(signed_in)
    response = RedirectResponse("/worklist", status_code=303, headers=_HEADERS)
    sessions.set_session_cookie(response, request, key)
    response.delete_cookie(csrf.LOGIN_COOKIE, path=csrf.LOGIN_PATH)
    return response


def _too_many(request: Request, settings: Any, username: str, wait: int) -> HTMLResponse:
    return _login_page(
        request,
        settings,
        error=(
            "Too many failed sign-in attempts. Sign-in is paused for this user or this "
            f"computer; try again in {_wait_words(wait)}."
        ),
        username=username,
        status=429,
        retry_after=wait,
    )


async def _checked_form(
    request: Request,
) -> tuple[sessions.WebSession | None, dict[str, str], Response | None]:
    """The session and form of a state-changing POST, or the response refusing it."""
    session = await sessions.current_session(request)
    if session is None:
        return None, {}, _refused(401, "You are not signed in, or your session has ended.")
    form = {k: str(v) for k, v in (await request.form()).items()}
    if not csrf.same_origin(request):
        return None, {}, _refused(403, "This request did not come from the worklist page.")
    token = form.get(csrf.FIELD)
    if not csrf.action_token_ok(request.app.state.jwt_secret, session.key_hash, token):
        return None, {}, _refused(403, "This request could not be verified. Reload the page.")
    return session, form, None


@router.post("/logout")
async def logout(request: Request, factory: FactoryDep) -> Response:
    """Ends the session on the server (the row is deleted), not only in this browser."""
    session, _form, refused = await _checked_form(request)
    if refused is not None and refused.status_code != 401:
        return refused
    key = request.cookies.get(sessions.COOKIE)
    if session is not None and key:

        def close() -> None:
            with transaction(factory) as db:
                sessions.close_session(db, key)

        await run_in_threadpool(close)
    response = _to_login("signed-out")
    sessions.clear_session_cookie(response, request)
    return response


async def _act(request: Request, uow: Any, which: str) -> Response:
    session, form, refused = await _checked_form(request)
    if refused is not None or session is None:
        return refused or _refused(401, "Not signed in.")
    rid, version = form.get("id", ""), form.get("version", "")
    if not _ID.match(rid) or not version.isdigit():
        return RedirectResponse("/worklist?done=invalid", status_code=303, headers=_HEADERS)
    ctx = _ctx(session, request.app.state.settings)
    do = actions.acknowledge if which == "acknowledge" else actions.close
    outcome = await run_in_threadpool(do, uow, ctx, rid, version, datetime.now(UTC))
    return RedirectResponse(f"/worklist?done={outcome}", status_code=303, headers=_HEADERS)


@router.post("/acknowledge")
async def acknowledge(request: Request, uow: UnitOfWorkDep) -> Response:
    return await _act(request, uow, "acknowledge")


@router.post("/close")
async def close(request: Request, uow: UnitOfWorkDep) -> Response:
    return await _act(request, uow, "close")


async def _act_with_reason(request: Request, uow: Any, which: str) -> Response:
    """Snooze (`hours`, `reason`) or dismiss (`reason` code, optional `text`) an alert request;
    the same session, CSRF and If-Match checks as acknowledge (issue 13)."""
    session, form, refused = await _checked_form(request)
    if refused is not None or session is None:
        return refused or _refused(401, "Not signed in.")
    rid, version = form.get("id", ""), form.get("version", "")
    if not _ID.match(rid) or not version.isdigit():
        return RedirectResponse("/worklist?done=invalid", status_code=303, headers=_HEADERS)
    ctx = _ctx(session, request.app.state.settings)
    now = datetime.now(UTC)
    reason, text = form.get("reason", ""), form.get("text", "")
    if which == "snooze":
        hours = form.get("hours", "")
        if not re.fullmatch(r"\d{1,3}(\.\d{1,2})?", hours) or float(hours) <= 0:
            return RedirectResponse("/worklist?done=invalid", status_code=303, headers=_HEADERS)
        until = now + timedelta(hours=float(hours))
        outcome = await run_in_threadpool(
            partial(actions.snooze, until=until, reason=reason), uow, ctx, rid, version, now
        )
    else:
        outcome = await run_in_threadpool(
            partial(actions.dismiss, reason=reason, text=text), uow, ctx, rid, version, now
        )
    return RedirectResponse(f"/worklist?done={outcome}", status_code=303, headers=_HEADERS)


@router.post("/snooze")
async def snooze(request: Request, uow: UnitOfWorkDep) -> Response:
    return await _act_with_reason(request, uow, "snooze")


@router.post("/dismiss")
async def dismiss(request: Request, uow: UnitOfWorkDep) -> Response:
    return await _act_with_reason(request, uow, "dismiss")


@router.get("/static/{name}")
def static(name: str) -> Response:
    media_type = STATIC_TYPES.get(name)
    if media_type is None:
        return Response("Not found", status_code=404, media_type="text/plain")
    return Response(
        static_bytes(name),
        media_type=media_type,
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )
