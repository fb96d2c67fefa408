"""string search columns (Patient name, birthdate, gender)

Adds `resource_strings` (Patient name/family/given, normalised and as sent) and indexes what
Patients already stored need for the new search parameters: their names, their birthDate as
the date range, their gender as a token.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 22:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 500


def upgrade() -> None:
    strings = op.create_table(
        "resource_strings",
        sa.Column(
            "pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=32), nullable=False),
        sa.Column("norm", sa.String(length=255), nullable=False),
        sa.Column("exact", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("pk"),
    )
    op.create_index(
        "ix_strings_lookup",
        "resource_strings",
        ["type", "param", "norm"],
        postgresql_ops={"norm": "varchar_pattern_ops"},
    )
    op.create_index("ix_strings_resource", "resource_strings", ["type", "id"])
    _backfill_patients(strings)


def _backfill_patients(strings: sa.Table) -> None:
    # Index code of the running release: the same extraction the store applies on write.
    from service.fhir.index import extract
    from service.store.resources import string_rows

    conn = op.get_bind()
    meta = sa.MetaData()
    resources = sa.Table("resources", meta, autoload_with=conn)
    tokens = sa.Table("resource_tokens", meta, autoload_with=conn)
    rows = conn.execute(
        sa.select(resources.c.id, resources.c.content).where(
            resources.c.type == "Patient", resources.c.deleted.is_(False)
        )
    ).all()
    for start in range(0, len(rows), _BATCH):
        string_batch: list[dict[str, str]] = []
        token_batch: list[dict[str, str]] = []
        for rid, content in rows[start : start + _BATCH]:
            idx = extract("Patient", rid, orjson.loads(content))
            string_batch += string_rows("Patient", rid, idx.strings)
            token_batch += [
                {"type": "Patient", "id": rid, "param": p, "system": s, "code": c}
                for p, s, c in idx.tokens
                if p == "gender"
            ]
            if idx.date is not None:
                conn.execute(
                    resources.update()
                    .where(resources.c.type == "Patient", resources.c.id == rid)
                    .values(date_start=idx.date.start, date_end=idx.date.end)
                )
        if string_batch:
            conn.execute(strings.insert(), string_batch)
        if token_batch:
            conn.execute(tokens.insert(), token_batch)


def downgrade() -> None:
    op.drop_index("ix_strings_resource", table_name="resource_strings")
    op.drop_index("ix_strings_lookup", table_name="resource_strings")
    op.drop_table("resource_strings")
    conn = op.get_bind()
    conn.execute(sa.text("DELETE FROM resource_tokens WHERE type = 'Patient' AND param = 'gender'"))
