"""The transactional outbox: evaluations asked for by writes, relayed to the worker.

Writes add rows in the same transaction as the data, so a committed write always gets its
evaluation and a rolled-back one never does. Rows are deleted only by the evaluation that
covers them; a dispatched row left behind (worker killed, message lost) is dispatched again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from service.store.models import Outbox
from service.store.resources import utcnow


@dataclass(frozen=True, slots=True)
class Due:
    patient_id: str
    upto: int  # highest outbox row this evaluation covers


def enqueue(session: Session, patient_ids: Iterable[str], *, as_of: datetime | None = None) -> None:
    """One row per patient per transaction (coalesced here and again in the relay)."""
    now = utcnow()
    ids = sorted(set(patient_ids))
    session.add_all([Outbox(patient_id=p, created_at=now) for p in ids])
    if as_of is not None:
        from service.store.episodes import ensure_lock_row

        for p in ids:
            ensure_lock_row(session, p, as_of)


def due(session: Session, *, redispatch_after: float, limit: int = 500) -> list[Due]:
    """Patients with undispatched rows, or dispatched rows that never completed in time."""
    stale = utcnow() - timedelta(seconds=redispatch_after)
    stmt = (
        select(Outbox.patient_id, func.max(Outbox.pk))
        .where(or_(Outbox.dispatched_at.is_(None), Outbox.dispatched_at < stale))
        .group_by(Outbox.patient_id)
        .order_by(func.min(Outbox.pk))
        .limit(limit)
    )
    return [Due(p, upto) for p, upto in session.execute(stmt)]


def mark_dispatched(session: Session, item: Due) -> None:
    session.execute(
        update(Outbox)
        .where(Outbox.patient_id == item.patient_id, Outbox.pk <= item.upto)
        .values(dispatched_at=utcnow(), attempts=Outbox.attempts + 1)
    )


def complete(session: Session, patient_id: str, upto: int | None) -> None:
    """Called inside the evaluation's transaction: the rows it covered are done."""
    stmt = delete(Outbox).where(Outbox.patient_id == patient_id)
    if upto is not None:
        stmt = stmt.where(Outbox.pk <= upto)
    session.execute(stmt)


def backlog(session: Session) -> int:
    return session.scalar(select(func.count(func.distinct(Outbox.patient_id)))) or 0
