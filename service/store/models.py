"""Tables. Resource JSON is kept as the client sent it (plus meta); columns beside it exist only
for what search and the rule loader filter on. Dates are naive UTC everywhere so SQLite and
PostgreSQL compare them the same way."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


_ID = String(64)
_TYPE = String(64)


class Resource(Base):
    """The current version of every stored resource (deleted ones keep a tombstone)."""

    __tablename__ = "resources"
    type: Mapped[str] = mapped_column(_TYPE, primary_key=True)
    id: Mapped[str] = mapped_column(_ID, primary_key=True)
    version_id: Mapped[int] = mapped_column(Integer, nullable=False)
    last_updated: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    deleted: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    patient_id: Mapped[str | None] = mapped_column(_ID)
    status: Mapped[str | None] = mapped_column(String(32))
    date_start: Mapped[datetime | None] = mapped_column(DateTime)
    date_end: Mapped[datetime | None] = mapped_column(DateTime)
    content: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)

    __table_args__ = (
        Index("ix_resources_patient_type_date", "patient_id", "type", "date_start"),
        Index("ix_resources_type_updated", "type", "last_updated"),
        Index("ix_resources_type_status", "type", "status"),
    )


class ResourceToken(Base):
    """Token search values (code, identifier, category, priority...) of current versions.

    Written and deleted only by `resources.save/remove`, in the resource's own transaction. No
    foreign key: PostgreSQL's per-row referential check was planned against the empty table
    and turned every token insert into a scan as the data grew (ingest slowed ~10x).
    """

    __tablename__ = "resource_tokens"
    pk: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    type: Mapped[str] = mapped_column(_TYPE, nullable=False)
    id: Mapped[str] = mapped_column(_ID, nullable=False)
    param: Mapped[str] = mapped_column(String(32), nullable=False)
    system: Mapped[str] = mapped_column(String(255), nullable=False)
    code: Mapped[str] = mapped_column(String(255), nullable=False)

    __table_args__ = (
        Index("ix_tokens_lookup", "type", "param", "code", "system"),
        Index("ix_tokens_resource", "type", "id"),
    )


class ResourceVersion(Base):
    """Every version ever stored: the audit trail behind vread and _history."""

    __tablename__ = "resource_versions"
    type: Mapped[str] = mapped_column(_TYPE, primary_key=True)
    id: Mapped[str] = mapped_column(_ID, primary_key=True)
    version_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_updated: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    method: Mapped[str] = mapped_column(String(8), nullable=False)
    deleted: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    content: Mapped[bytes | None] = mapped_column(LargeBinary)


class Outbox(Base):
    """Evaluations asked for by stored writes, written in the same transaction as the data.

    A row is dispatched by the relay and deleted by the evaluation that covers it, so
    `count(distinct patient_id)` is exactly the backlog, and a lost task is dispatched again.
    """

    __tablename__ = "outbox"
    pk: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    patient_id: Mapped[str] = mapped_column(_ID, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)

    __table_args__ = (
        Index("ix_outbox_patient", "patient_id", "pk"),
        Index("ix_outbox_dispatched", "dispatched_at"),
        # Never reuse a deleted row's id: the relay marks "rows up to N" dispatched after the
        # hand-off, and a reused id would mark a newer, unevaluated write as handed off.
        {"sqlite_autoincrement": True},
    )


class PatientLock(Base):
    """One row per evaluated patient; evaluations lock it so two workers never race."""

    __tablename__ = "patient_locks"
    patient_id: Mapped[str] = mapped_column(_ID, primary_key=True)
    # Evaluation clock for replayed test patients (asOf); NULL = judged at the current time.
    as_of: Mapped[datetime | None] = mapped_column(DateTime)
    evaluated_at: Mapped[datetime | None] = mapped_column(DateTime)


class Episode(Base):
    """A concern episode. `open_key` is the patient id while open and NULL once closed; its
    unique constraint makes a second open episode for one patient impossible."""

    __tablename__ = "episodes"
    id: Mapped[str] = mapped_column(_ID, primary_key=True)
    patient_id: Mapped[str] = mapped_column(_ID, nullable=False, index=True)
    open_key: Mapped[str | None] = mapped_column(_ID, unique=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    state: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)


class ResourceString(Base):
    """String search values (Patient name, family, given) of current versions: `norm` is
    lower-cased, accent-free and space-collapsed for FHIR's default starts-with and
    `:contains` matching; `exact` is the value as sent, for `:exact`.

    Written and deleted by `resources.save/remove` with the tokens, in the same transaction.
    """

    __tablename__ = "resource_strings"
    pk: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    type: Mapped[str] = mapped_column(_TYPE, nullable=False)
    id: Mapped[str] = mapped_column(_ID, nullable=False)
    param: Mapped[str] = mapped_column(String(32), nullable=False)
    norm: Mapped[str] = mapped_column(String(255), nullable=False)
    exact: Mapped[str] = mapped_column(String(255), nullable=False)

    __table_args__ = (
        # Pattern ops: PostgreSQL uses the index for LIKE 'prefix%' whatever the collation.
        Index(
            "ix_strings_lookup",
            "type",
            "param",
            "norm",
            postgresql_ops={"norm": "varchar_pattern_ops"},
        ),
        Index("ix_strings_resource", "type", "id"),
    )


class WebSession(Base):
    """A signed-in worklist session (migration 0003). The cookie holds a random key; only its
    SHA-256 is stored, so a database read does not hand out live sessions. Signing out deletes
    the row, which ends the session everywhere."""

    __tablename__ = "web_sessions"
    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(200), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)

    __table_args__ = (Index("ix_web_session_expiry", "expires_at"),)


class SignInFailure(Base):
    """Failed worklist sign-ins per key ("user:<name>" or "addr:<client address>") in the
    current window, and the lockout they caused (migration 0003). In the database so every
    API process counts together."""

    __tablename__ = "sign_in_failures"
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, nullable=False)
    window_start: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)


class ClientAssertion(Base):
    """A SMART Backend Services client assertion already used (migration 0004): its `jti` may
    not be presented again while the assertion is unexpired. In the database so every API
    process refuses the replay; rows past `expires_at` are deleted as new ones arrive."""

    __tablename__ = "client_assertions"
    client_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    jti: Mapped[str] = mapped_column(String(255), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)

    __table_args__ = (Index("ix_client_assertion_expiry", "expires_at"),)


class CdsFeedback(Base):
    """One CDS Hooks feedback outcome (migration 0006): which client said what about which card
    (`accepted` / `overridden`, with the dismiss reason code), and what the service did with it
    (`applied` dismissed the alert; `recorded` only; `stale` the card's alert had moved on)."""

    __tablename__ = "cds_feedback"
    pk: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    service_id: Mapped[str] = mapped_column(String(64), nullable=False)
    client_id: Mapped[str] = mapped_column(String(255), nullable=False)
    card_uuid: Mapped[str] = mapped_column(String(64), nullable=False)
    request_id: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16), nullable=False)
    reason_code: Mapped[str | None] = mapped_column(String(64))
    applied: Mapped[str] = mapped_column(String(16), nullable=False)
    outcome_at: Mapped[datetime | None] = mapped_column(DateTime)
    received_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)

    __table_args__ = (Index("ix_cds_feedback_card", "card_uuid"),)
