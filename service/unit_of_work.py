"""The write path: one transaction whose commit also asks for the evaluations it caused.

Routes, Bundles and the worklist run their interactions inside `uow(ctx)`. The interactions
record on the `WriteContext` which patients they touched; when the block ends normally the unit
of work writes one outbox row per patient in the same transaction and commits both together
(a committed write always gets its evaluation, a rolled-back one never does), then nudges the
relay so the evaluation starts without waiting for its next poll.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy.orm import Session, sessionmaker

from service.interactions import WriteContext
from service.store import outbox
from service.store.db import transaction

T = TypeVar("T")


class UnitOfWork:
    def __init__(
        self, factory: sessionmaker[Session], *, after_commit: Callable[[], None] | None = None
    ) -> None:
        self._factory = factory
        self._after_commit = after_commit

    @contextmanager
    def __call__(self, ctx: WriteContext) -> Iterator[Session]:
        """A session for the writes of one request; commit (data and outbox rows) on success,
        roll back on any exception, which also forgets the patients recorded meanwhile."""
        try:
            with transaction(self._factory) as session:
                yield session
                if ctx.patients:
                    outbox.enqueue(session, ctx.patients, as_of=ctx.as_of)
        finally:
            ctx.patients.clear()
        if self._after_commit is not None:
            self._after_commit()

    def run(self, ctx: WriteContext, work: Callable[[Session], T]) -> T:
        """`work(session)` in one unit of work (what a route hands to its thread pool)."""
        with self(ctx) as session:
            return work(session)
