"""Used client-assertion ids (`jti`), so a captured SMART client assertion cannot be replayed.

One row per (client, jti) until the assertion expires. The insert is `ON CONFLICT DO NOTHING`
on the primary key: of two API processes receiving the same assertion at once, exactly one
inserts the row (PostgreSQL makes the second wait for the first's commit; SQLite serialises
writers), and only that one issues a token.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.store.models import ClientAssertion


def record_use(session: Session, client_id: str, jti: str, expires_at: datetime) -> bool:
    """True if this (client, jti) is new and is now recorded; False if it was used before.
    Datetimes are naive UTC, like every other column."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert(ClientAssertion)
        .values(client_id=client_id, jti=jti, expires_at=expires_at)
        .on_conflict_do_nothing(index_elements=["client_id", "jti"])
        .returning(ClientAssertion.jti)  # a row back = inserted (rowcount is -1 on psycopg)
    )
    return session.execute(stmt).first() is not None


def delete_expired(session: Session, now: datetime) -> int:
    """Forget assertions past their expiry: they are refused on `exp` alone from then on."""
    result = session.execute(delete(ClientAssertion).where(ClientAssertion.expires_at < now))
    return result.rowcount  # type: ignore[attr-defined, no-any-return]
