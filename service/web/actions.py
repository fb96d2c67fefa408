"""Acknowledge and close: the nurse's two writes, through the API's own FHIR update path.

Each is `interactions.update` inside a UnitOfWork, exactly like `PUT /fhir/{type}/{id}`: scope
checks, validation, a new version, and (written by the unit of work on commit) an outbox row in
the same transaction, so the worker re-evaluates the patient, then a nudge to the relay.
If-Match carries the version the nurse was shown: when the alert changed in between (new
evidence, a colleague acted), the write is refused and the nurse sees the alert as it is now
instead of acting on a stale picture.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy.orm import Session

from contract import ACK_NOTE_TEXT, OPEN_COMMUNICATION_STATUSES
from service import alert_changes, interactions
from service.errors import FHIRError
from service.interactions import WriteContext
from service.unit_of_work import UnitOfWork
from service.web.extract import parse_when

Outcome = Literal[
    "acknowledged",
    "closed",
    "snoozed",
    "dismissed",
    "already",
    "conflict",
    "gone",
    "forbidden",
    "failed",
    "invalid",
]
Change = Callable[[dict[str, Any], str], dict[str, Any] | None]


def _instant(now: datetime) -> str:
    return now.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _write(
    uow: UnitOfWork,
    ctx: WriteContext,
    rtype: str,
    rid: str,
    version: str,
    change: Change,
    done: Outcome,
    then: Callable[[Session, dict[str, Any]], None] | None = None,
) -> Outcome:
    try:
        with uow(ctx) as session:
            current = interactions.read(session, ctx, rtype, rid)
            body = change(current.json(), ctx.principal.subject)
            if body is None:
                return "already"
            interactions.update(session, ctx, rtype, rid, body, if_match=version)
            if then is not None:
                then(session, body)
    except ValueError:  # the nurse's input (snooze time, dismiss reason) was refused
        return "invalid"
    except FHIRError as exc:
        if exc.status == 412:
            return "conflict"
        if exc.status in (404, 410):
            return "gone"
        if exc.status in (401, 403):
            return "forbidden"
        return "failed"
    return done


def acknowledge(
    uow: UnitOfWork, ctx: WriteContext, request_id: str, version: str, now: datetime
) -> Outcome:
    """CommunicationRequest → completed, with a note naming who acknowledged it and when."""

    def change(body: dict[str, Any], who: str) -> dict[str, Any] | None:
        if body.get("status") not in OPEN_COMMUNICATION_STATUSES:
            return None
        notes = [n for n in body.get("note") or () if isinstance(n, dict)]
        notes.append({"authorString": who, "time": _instant(now), "text": ACK_NOTE_TEXT})
        return {**body, "status": "completed", "note": notes}

    return _write(uow, ctx, "CommunicationRequest", request_id, version, change, "acknowledged")


def close(uow: UnitOfWork, ctx: WriteContext, flag_id: str, version: str, now: datetime) -> Outcome:
    """Flag → inactive with period.end: the episode ends and the worker revokes any request
    still open and consumes the episode's evidence (spec §6)."""

    def change(body: dict[str, Any], _who: str) -> dict[str, Any] | None:
        if body.get("status") != "active":
            return None
        period = dict(body.get("period") or {})
        period["end"] = _instant(now)
        start = parse_when(period.get("start"))
        if start is not None and start > now:
            period["end"] = period["start"]  # a period may not end before it starts
        return {**body, "status": "inactive", "period": period}

    return _write(uow, ctx, "Flag", flag_id, version, change, "closed")


# --- Snooze and dismiss with a reason (issue 13) ---------------------------------------------


def snooze(
    uow: UnitOfWork,
    ctx: WriteContext,
    request_id: str,
    version: str,
    now: datetime,
    *,
    until: datetime,
    reason: str,
) -> Outcome:
    """CommunicationRequest → on-hold until `until`, with the reason in a note
    (service/alert_changes.py); the deadline sweep makes it active again then."""

    def change(body: dict[str, Any], who: str) -> dict[str, Any] | None:
        return alert_changes.snoozed(body, who=who, now=now, until=until, reason=reason)

    return _write(uow, ctx, "CommunicationRequest", request_id, version, change, "snoozed")


def dismiss(
    uow: UnitOfWork,
    ctx: WriteContext,
    request_id: str,
    version: str,
    now: datetime,
    *,
    reason: str,
    text: str = "",
) -> Outcome:
    """CommunicationRequest → completed with a coded dismiss reason, and its Flag closed in the
    same transaction (the concern ends; the worker consumes its evidence), like `close`."""

    def change(body: dict[str, Any], who: str) -> dict[str, Any] | None:
        return alert_changes.dismissed(body, who=who, now=now, reason=reason, text=text)

    def close_flag(session: Session, body: dict[str, Any]) -> None:
        for about in body.get("about") or ():
            ref = about.get("reference") if isinstance(about, dict) else None
            if not isinstance(ref, str) or not ref.startswith("Flag/"):
                continue
            flag = interactions.read(session, ctx, "Flag", ref.removeprefix("Flag/")).json()
            if flag.get("status") != "active":
                continue
            period = dict(flag.get("period") or {})
            start = parse_when(period.get("start"))
            period["end"] = period["start"] if start is not None and start > now else _instant(now)
            closed = {k: v for k, v in flag.items() if k != "meta"}
            closed |= {"status": "inactive", "period": period}
            interactions.update(
                session, ctx, "Flag", str(flag["id"]), closed, if_match=flag["meta"]["versionId"]
            )

    return _write(
        uow, ctx, "CommunicationRequest", request_id, version, change, "dismissed", close_flag
    )
