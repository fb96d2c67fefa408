"""Engine and session factory for SQLite (embedded) and PostgreSQL (production).

SQLite: WAL plus `BEGIN IMMEDIATE`, so the API and the in-process worker queue for the write
lock instead of failing with "database is locked" half way through a transaction; within one
process they queue on a FIFO lock (`sqlite_writer`) rather than SQLite's sleeping busy handler.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from service.files import make_private_dir, make_private_sqlite
from service.store.sqlite_writer import WriterConnection, connection_class

BUSY_TIMEOUT_SECONDS = 60


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            # The database holds patient data: its directory (when we create it) is 0700 and
            # the file with its -wal/-shm 0600 (service/files.py).
            db_file = Path(path.split("?", 1)[0])
            if not db_file.parent.exists():
                make_private_dir(db_file.parent)
            make_private_sqlite(db_file)
        engine = create_engine(
            url,
            connect_args={
                "timeout": BUSY_TIMEOUT_SECONDS,
                "check_same_thread": False,
                "factory": connection_class(),
            },
            hide_parameters=True,  # errors must not echo resource JSON into logs
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            dbapi_conn = conn.connection.dbapi_connection
            assert isinstance(dbapi_conn, WriterConnection)
            dbapi_conn.begin_immediate(BUSY_TIMEOUT_SECONDS)

        return engine
    return create_engine(
        url, pool_pre_ping=True, pool_size=10, max_overflow=20, hide_parameters=True
    )


@lru_cache
def _factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(make_engine(url), expire_on_commit=False)


def session_factory(url: str) -> sessionmaker[Session]:
    return _factory(url)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception."""
    with factory() as session, session.begin():
        yield session
