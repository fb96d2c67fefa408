"""Persistence of alert episodes and the per-patient evaluation lock."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Insert, Table, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from service.store.models import Episode, PatientLock
from service.store.resources import utcnow


def lock_patient(session: Session, patient_id: str) -> PatientLock:
    """Take the patient's row lock (PostgreSQL: SELECT FOR UPDATE; SQLite: the write lock that
    BEGIN IMMEDIATE already holds), creating the row on first use."""
    ensure_lock_row(session, patient_id)
    lock = session.get(PatientLock, patient_id, with_for_update=True, populate_existing=True)
    assert lock is not None
    return lock


def ensure_lock_row(session: Session, patient_id: str, as_of: datetime | None = None) -> None:
    """Create the patient's lock row if missing, race-free (ON CONFLICT DO NOTHING works on
    both SQLite and PostgreSQL); with `as_of`, also set the patient's evaluation clock."""
    dialect = session.get_bind().dialect.name
    insert_fn = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert_fn(PatientLock).values(patient_id=patient_id, as_of=as_of)
    if as_of is None:
        session.execute(stmt.on_conflict_do_nothing(index_elements=["patient_id"]))
    else:
        session.execute(
            stmt.on_conflict_do_update(index_elements=["patient_id"], set_={"as_of": as_of})
        )


def load_open(session: Session, patient_id: str) -> dict[str, Any] | None:
    row = session.scalar(select(Episode).where(Episode.open_key == patient_id))
    return orjson.loads(row.state) if row is not None else None


_EPISODES: Table = Episode.__table__  # type: ignore[assignment]


@functools.cache
def _upsert(dialect: str) -> Insert:
    """`save_state`'s statement, built once per dialect (both have INSERT ... ON CONFLICT)."""
    insert_fn = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert_fn(_EPISODES)
    kept = ("status", "open_key", "state", "updated_at")  # not id, patient_id, created_at
    return stmt.on_conflict_do_update(
        index_elements=["id"], set_={c: stmt.excluded[c] for c in kept}
    )


def save_state(
    session: Session, *, episode_id: str, patient_id: str, status: str, state: Mapping[str, Any]
) -> None:
    """Create or update the episode in one Core upsert: every evaluation that opens, changes
    or closes an alert runs this, and the ORM's get, object bookkeeping and flush cost more
    than the statement. The unique `open_key` check still fires here, inside the transaction
    (the upsert's conflict target is the id only, so a second open episode for the patient
    raises IntegrityError as the flush did); `created_at` is kept on update.

    An ORM `Episode` of this row already in the session (`load_open` loads one) would be stale
    after a Core write, so it is expired: a later attribute access reloads the row."""
    now = utcnow()
    conn = session.connection()
    conn.execute(
        _upsert(conn.dialect.name),
        {
            "id": episode_id,
            "patient_id": patient_id,
            "open_key": patient_id if status == "open" else None,
            "status": status,
            "state": orjson.dumps(state).decode(),
            "created_at": now,
            "updated_at": now,
        },
    )
    stale = session.identity_map.get(identity_key(Episode, episode_id))
    if stale is not None:
        session.expire(stale)


def list_open_patient_ids(session: Session) -> list[str]:
    return list(session.scalars(select(Episode.patient_id).where(Episode.open_key.is_not(None))))


@dataclass(frozen=True, slots=True)
class LockedPatient:
    """A patient's lock row as a batch read it (`lock_patients`); the batch writes
    `evaluated_at` back with `mark_evaluated`."""

    patient_id: str
    as_of: datetime | None


_LOCKS: Table = PatientLock.__table__  # type: ignore[assignment]


def lock_patients(session: Session, patient_ids: Iterable[str]) -> dict[str, LockedPatient]:
    """`lock_patient` for a batch, in Core statements (no ORM identity map: this is the hot
    path of every batched evaluation): the missing rows created in one statement, then all
    rows locked in one `SELECT ... FOR UPDATE`, in id order so two batches sharing patients
    wait for each other instead of deadlocking."""
    ids = sorted(set(patient_ids))
    if not ids:
        return {}
    conn = session.connection()
    insert_fn = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(
        insert_fn(_LOCKS)
        .values([{"patient_id": pid, "as_of": None} for pid in ids])
        .on_conflict_do_nothing(index_elements=["patient_id"])
    )
    rows = conn.execute(
        select(_LOCKS.c.patient_id, _LOCKS.c.as_of)
        .where(_LOCKS.c.patient_id.in_(ids))
        .order_by(_LOCKS.c.patient_id)
        .with_for_update()
    )
    return {pid: LockedPatient(pid, as_of) for pid, as_of in rows}


def mark_evaluated(session: Session, patient_ids: Iterable[str], at: datetime) -> None:
    """The batch's patients were evaluated at `at` (naive UTC): one UPDATE."""
    ids = sorted(set(patient_ids))
    if ids:
        session.connection().execute(
            update(_LOCKS).where(_LOCKS.c.patient_id.in_(ids)).values(evaluated_at=at)
        )


def load_states(
    session: Session, patient_ids: Iterable[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """The open and the closed episode states of a batch of patients, in one query:
    (open state by patient, closed states by patient)."""
    ids = sorted(set(patient_ids))
    opened: dict[str, dict[str, Any]] = {}
    closed: dict[str, list[dict[str, Any]]] = {pid: [] for pid in ids}
    if not ids:
        return opened, closed
    e = _EPISODES.c  # Core: every evaluation reads this, and episodes are written in Core
    rows = session.connection().execute(
        select(e.patient_id, e.open_key, e.state).where(e.patient_id.in_(ids))
    )
    for patient_id, open_key, state in rows:
        if open_key is not None:
            opened[patient_id] = orjson.loads(state)
        else:
            closed[patient_id].append(orjson.loads(state))
    return opened, closed
