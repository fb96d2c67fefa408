"""CDS Hooks feedback: record what the clinician did with a card, and apply an override.

`accepted` is recorded. `overridden` with one of the card's `overrideReasons` (a dismiss
reason of `contract.DISMISS_REASONS`) dismisses the alert exactly as the worklist's Dismiss does
(`service.web.actions.dismiss`): its CommunicationRequest becomes `completed` with that reason
as a coded `statusReason` (the clinician's comment as its text) and a note naming the EHR
client, and its Flag is closed, through the normal write path (`interactions.update` in a
`UnitOfWork`, If-Match on the version the card was built from), so the evaluation and
Subscriptions see it like any nurse's write. An override without a known reason (or `other`
without a comment) is recorded only: the alert stays open.

A card id names one version of one request (service/cds/cards.py); feedback on a card whose
alert has moved on (new evidence, a nurse acted) is recorded as `stale` and changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import contract as c
from service.cds.cards import DISMISS_REASON_SYSTEM, card_uuid, request_version
from service.cds.reads import open_requests
from service.interactions import WriteContext
from service.store.models import CdsFeedback
from service.unit_of_work import UnitOfWork
from service.web import actions

Applied = Literal["applied", "recorded", "stale"]
OUTCOMES = frozenset({"accepted", "overridden"})


class FeedbackError(ValueError):
    """The feedback document is malformed (400)."""


@dataclass(frozen=True, slots=True)
class Item:
    card: str
    outcome: str
    reason: str | None  # a dismiss reason code, when the override named one of ours
    comment: str | None
    outcome_at: datetime | None


def _when(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def parse(document: object) -> list[Item]:
    if not isinstance(document, Mapping) or not isinstance(document.get("feedback"), list):
        raise FeedbackError('expected {"feedback": [...]}')
    items = []
    for i, raw in enumerate(document["feedback"]):
        if not isinstance(raw, Mapping):
            raise FeedbackError(f"feedback[{i}] is not an object")
        card, outcome = raw.get("card"), raw.get("outcome")
        if not isinstance(card, str) or not card or len(card) > 64:
            raise FeedbackError(f"feedback[{i}].card must be the card's uuid")
        if outcome not in OUTCOMES:
            raise FeedbackError(f"feedback[{i}].outcome must be accepted or overridden")
        reason = comment = None
        override = raw.get("overrideReason")
        if isinstance(override, Mapping):
            coding = override.get("reason")
            if isinstance(coding, Mapping) and coding.get("system") == DISMISS_REASON_SYSTEM:
                code = coding.get("code")
                reason = code if code in c.DISMISS_REASONS else None
            text = override.get("userComment")
            comment = text[:1000] if isinstance(text, str) and text.strip() else None
        items.append(Item(card, str(outcome), reason, comment, _when(raw.get("outcomeTimestamp"))))
    return items


def _find(uow: UnitOfWork, ctx: WriteContext, card: str) -> Mapping[str, Any] | None:
    """The open alert request this card was built from (at that version), if still open."""
    with uow(ctx) as session:
        for request in open_requests(session, ctx, None):
            if card_uuid(request) == card:
                return request
    return None


def _applied(outcome: actions.Outcome) -> Applied:
    if outcome == "dismissed":
        return "applied"
    if outcome in ("conflict", "gone", "already"):
        return "stale"
    return "recorded"  # refused (scope, `other` without a comment): the alert stays open


def apply(
    uow: UnitOfWork, ctx: WriteContext, service_id: str, items: list[Item], now: datetime
) -> list[Applied]:
    """Record every item, dismissing the alert of each override with a reason."""
    results: list[Applied] = []
    for item in items:
        request = _find(uow, ctx, item.card)
        applied: Applied = "stale" if request is None else "recorded"
        if request is not None and item.outcome == "overridden" and item.reason:
            # The worklist's own dismiss: request completed with the coded reason, its Flag
            # closed, in one unit of work with If-Match on the version the card showed.
            outcome = actions.dismiss(
                uow,
                ctx,
                str(request["id"]),
                request_version(request),
                now,
                reason=item.reason,
                text=item.comment or "",
            )
            applied = _applied(outcome)
        with uow(ctx) as session:
            session.add(
                CdsFeedback(
                    service_id=service_id,
                    client_id=ctx.principal.subject,
                    card_uuid=item.card,
                    request_id=str(request["id"]) if request is not None else None,
                    outcome=item.outcome,
                    reason_code=item.reason,
                    applied=applied,
                    outcome_at=item.outcome_at,
                    received_at=now.astimezone(UTC).replace(tzinfo=None),
                )
            )
        results.append(applied)
    return results
