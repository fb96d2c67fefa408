"""SMART backend services: used client-assertion ids (jti)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 22:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "client_assertions",
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("jti", sa.String(length=255), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "jti"),
    )
    with op.batch_alter_table("client_assertions", schema=None) as batch_op:
        batch_op.create_index("ix_client_assertion_expiry", ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("client_assertions", schema=None) as batch_op:
        batch_op.drop_index("ix_client_assertion_expiry")
    op.drop_table("client_assertions")
