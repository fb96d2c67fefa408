"""Two workers evaluating one patient at the same moment open one episode, not two."""

from __future__ import annotations

import threading

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service import bundles
from service.auth import Principal
from service.config import Settings
from service.interactions import WriteContext
from service.store.db import session_factory, transaction
from service.store.models import Episode, Resource
from service.unit_of_work import UnitOfWork
from tests.builders import back_pain_story
from tests.conftest import wait_idle
from workers.evaluation import evaluate_patient


def _race(factory: sessionmaker[Session], settings: Settings, pid: str, n: int = 6) -> None:
    """n evaluations of one patient released at the same moment; none may fail."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def run() -> None:
        barrier.wait()
        try:
            evaluate_patient(factory, pid, settings=settings)
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def _counts(factory: sessionmaker[Session], pid: str) -> tuple[int, int, int]:
    """(episodes, Flags, CommunicationRequests) stored for the patient."""
    with transaction(factory) as session:

        def alerts(rtype: str) -> int:
            stmt = select(func.count()).select_from(Resource)
            stmt = stmt.where(Resource.type == rtype, Resource.patient_id == pid)
            return session.scalar(stmt) or 0

        episodes = session.scalar(
            select(func.count()).select_from(Episode).where(Episode.patient_id == pid)
        )
        return episodes or 0, alerts("Flag"), alerts("CommunicationRequest")


def test_parallel_evaluations_open_one_episode(
    client: TestClient, headers: dict[str, str], settings: Settings
) -> None:
    """Re-evaluations racing on an open episode change nothing and duplicate nothing."""
    client.post("/fhir", json=back_pain_story("cc1"), headers=headers)
    wait_idle(client, headers)
    factory = session_factory(settings.resolved_database_url)
    _race(factory, settings, "cc1")
    assert _counts(factory, "cc1") == (1, 1, 1)


def test_parallel_first_evaluations_race_safely(
    settings: Settings, client: TestClient, headers: dict[str, str]
) -> None:
    """Data stored without waiting for the relay, then six first evaluations race (and the
    relay's own evaluation with them)."""
    factory = session_factory(settings.resolved_database_url)
    ctx = WriteContext(Principal("t", frozenset({"system/*.*"})))
    bundles.process(UnitOfWork(factory), ctx, back_pain_story("cc2"))
    _race(factory, settings, "cc2")
    wait_idle(client, headers)
    assert _counts(factory, "cc2") == (1, 1, 1)
