"""Persistence of alert episodes and the per-patient evaluation lock."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

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


def patient_clock(session: Session, patient_id: str) -> datetime | None:
    lock = session.get(PatientLock, patient_id)
    return lock.as_of if lock is not None else None


def load_open(session: Session, patient_id: str) -> dict[str, Any] | None:
    row = session.scalar(select(Episode).where(Episode.open_key == patient_id))
    return orjson.loads(row.state) if row is not None else None


def load_closed_states(session: Session, patient_id: str) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Episode.state).where(Episode.patient_id == patient_id, Episode.open_key.is_(None))
    )
    return [orjson.loads(s) for s in rows]


def save_state(
    session: Session, *, episode_id: str, patient_id: str, status: str, state: Mapping[str, Any]
) -> None:
    now = utcnow()
    row = session.get(Episode, episode_id)
    if row is None:
        row = Episode(id=episode_id, patient_id=patient_id, created_at=now)
        session.add(row)
    row.status = status
    row.open_key = patient_id if status == "open" else None
    row.state = orjson.dumps(state).decode()
    row.updated_at = now
    session.flush()  # the unique open_key check fires here, inside the transaction


def list_open_patient_ids(session: Session) -> list[str]:
    return list(session.scalars(select(Episode.patient_id).where(Episode.open_key.is_not(None))))
