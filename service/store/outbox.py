"""The transactional outbox: evaluations asked for by writes, relayed to the worker.

Writes add rows in the same transaction as the data, so a committed write always gets its
evaluation and a rolled-back one never does. Rows are deleted only by the evaluation that
covers them; a dispatched row left behind (worker killed, message lost) is dispatched again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, delete, func, or_, select, update
from sqlalchemy.orm import Session

from service.store import wakeups
from service.store.models import Outbox
from service.store.resources import utcnow

_OUTBOX: Table = Outbox.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Due:
    patient_id: str
    upto: int  # highest outbox row this evaluation covers
    pks: tuple[int, ...] = ()  # the rows this hand-off claimed


def enqueue(session: Session, patient_ids: Iterable[str], *, as_of: datetime | None = None) -> None:
    """One row per patient per transaction (coalesced here and again in the relay)."""
    now = utcnow()
    ids = sorted(set(patient_ids))
    if not ids:
        return
    # One Core INSERT (executemany), not ORM objects: this runs in every write's transaction,
    # and the ORM's flush (or bulk insert) of new objects cost 5-15% of a single POST.
    session.connection().execute(
        _OUTBOX.insert(), [{"patient_id": p, "created_at": now, "attempts": 0} for p in ids]
    )
    wakeups.signal(session, wakeups.OUTBOX)  # the relays look as soon as this commits
    if as_of is not None:
        from service.store.episodes import ensure_lock_row

        for p in ids:
            ensure_lock_row(session, p, as_of)


def claim(session: Session, *, redispatch_after: float, limit: int = 500) -> list[Due]:
    """Claim the rows due for a hand-off, coalesced per patient, and mark them dispatched.

    Due = never dispatched, or dispatched longer ago than `redispatch_after` without being
    completed (the task was lost). Several relays (API processes, hosts) run this at once:
    PostgreSQL's `FOR UPDATE SKIP LOCKED` gives each a disjoint set of rows and the claim is
    committed with the caller's transaction, so no row is handed out twice; on SQLite the
    `BEGIN IMMEDIATE` write lock serialises the claims the same way. A hand-off that then
    fails is undone with `release`; a relay that dies between claim and hand-off leaves rows
    that turn stale and are claimed again.
    """
    now = utcnow()
    stale = now - timedelta(seconds=redispatch_after)
    stmt = (
        select(Outbox.pk, Outbox.patient_id)
        .where(or_(Outbox.dispatched_at.is_(None), Outbox.dispatched_at < stale))
        .order_by(Outbox.pk)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows: dict[str, list[int]] = {}
    for pk, patient_id in session.execute(stmt):
        rows.setdefault(patient_id, []).append(pk)
    if not rows:
        return []
    pks = [pk for group in rows.values() for pk in group]
    session.execute(
        update(Outbox)
        .where(Outbox.pk.in_(pks))
        .values(dispatched_at=now, attempts=Outbox.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    return [Due(p, max(group), tuple(group)) for p, group in rows.items()]


def release(session: Session, item: Due) -> None:
    """The hand-off failed: the claimed rows are due again at the next pass."""
    session.execute(
        update(Outbox)
        .where(Outbox.pk.in_(item.pks))
        .values(dispatched_at=None)
        .execution_options(synchronize_session=False)
    )


def requeue_dispatched(session: Session, *, before: datetime) -> int:
    """The broker lost its messages (restarted empty): every row handed out before that is
    due again now rather than after the stale-dispatch timeout."""
    result = session.execute(
        update(Outbox)
        .where(Outbox.dispatched_at.is_not(None), Outbox.dispatched_at <= before)
        .values(dispatched_at=None)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def backlog(session: Session) -> int:
    return session.scalar(select(func.count(func.distinct(Outbox.patient_id)))) or 0


@dataclass(frozen=True, slots=True)
class Depth:
    pending: int  # patients waiting for an evaluation
    rows: int
    oldest: datetime | None  # created_at of the oldest row (naive UTC)


def depth(session: Session) -> Depth:
    """Backlog for the metrics: patients, rows, and how old the oldest unfinished write is."""
    patients, rows, oldest = session.execute(
        select(
            func.count(func.distinct(Outbox.patient_id)), func.count(), func.min(Outbox.created_at)
        )
    ).one()
    return Depth(int(patients or 0), int(rows or 0), oldest)


def complete_many(session: Session, uptos: Mapping[str, int | None]) -> dict[str, datetime | None]:
    """Called inside an evaluation's transaction (workers/evaluation.py, one patient or a
    batch): the rows each patient's evaluation covered are done, in two statements. Returns,
    per patient, when the oldest covered row was written (for the write→alert delay), None if
    there were none.

    With an `upto` (a relay's hand-off), only rows that had been handed out are covered: a write
    that took a lower id but committed after the hand-off (ids are taken at insert, rows become
    visible at commit) may not have been seen by this evaluation's reads, so its row stays and
    is handed out on its own. The rows are read, then deleted by key, so a row committed in
    between is neither counted nor deleted."""
    if not uptos:
        return {}
    # Core on the connection, no ORM statement handling: this runs in every evaluation, and
    # the outbox is only ever written by Core statements (`enqueue`), so nothing is pending.
    o = _OUTBOX.c
    conn = session.connection()
    found = conn.execute(
        select(o.pk, o.patient_id, o.created_at, o.dispatched_at).where(
            o.patient_id.in_(sorted(uptos))
        )
    ).all()
    oldest: dict[str, datetime | None] = dict.fromkeys(uptos)
    covered: list[int] = []
    for pk, patient_id, created_at, dispatched_at in found:
        upto = uptos[patient_id]
        if upto is not None and (pk > upto or dispatched_at is None):
            continue
        covered.append(pk)
        first = oldest[patient_id]
        oldest[patient_id] = created_at if first is None else min(first, created_at)
    if covered:
        conn.execute(delete(_OUTBOX).where(o.pk.in_(covered)))
    return oldest
