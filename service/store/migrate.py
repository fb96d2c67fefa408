"""Run Alembic migrations from code, so `serve`, tests and the compose migration step share
one path (and a fresh SQLite data dir is created and migrated on first start)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

_HERE = Path(__file__).parent


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_HERE / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


# pg_advisory_lock key of the schema upgrade (any constant shared by every process).
_MIGRATION_LOCK = 0x0F41_A1E7


def upgrade(url: str) -> None:
    """Upgrade to head. On PostgreSQL, API processes and workers starting together on a fresh
    database take turns (an advisory lock): the first migrates, the others find it done,
    instead of racing to CREATE the same tables."""
    if not url.startswith("postgresql"):
        command.upgrade(alembic_config(url), "head")
        return
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK})
            try:
                command.upgrade(alembic_config(url), "head")
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK})
                conn.commit()
    finally:
        engine.dispose()
