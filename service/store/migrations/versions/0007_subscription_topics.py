"""topic-based subscriptions: event counters, stored events, delivery kind and event number

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 01:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "subscription_topic_counters",
        sa.Column("subscription_id", sa.String(length=64), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("signals", sa.Integer(), nullable=False),
        sa.Column("last_notified_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("subscription_id"),
    )
    op.create_table(
        "subscription_events",
        sa.Column(
            "pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("subscription_id", sa.String(length=64), nullable=False),
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.Column("topic", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("focus_type", sa.String(length=64), nullable=False),
        sa.Column("focus_id", sa.String(length=64), nullable=False),
        sa.Column("focus_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("pk"),
        sa.UniqueConstraint("subscription_id", "number", name="uq_subscription_event_number"),
    )
    with op.batch_alter_table("notification_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("event_number", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notification_deliveries", schema=None) as batch_op:
        batch_op.drop_column("event_number")
        batch_op.drop_column("kind")
    op.drop_table("subscription_events")
    op.drop_table("subscription_topic_counters")
