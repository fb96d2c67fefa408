"""Two workers evaluating one patient at the same moment open one episode, not two."""

from __future__ import annotations

import threading
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.config import Settings
from service.store.db import session_factory, transaction
from service.store.models import Episode, Resource
from tests.builders import back_pain_story
from tests.conftest import wait_idle
from workers.evaluation import evaluate_patient


def test_parallel_evaluations_open_one_episode(
    client: TestClient, headers: dict[str, str], settings: Settings
) -> None:
    """Re-evaluations racing on an open episode change nothing and duplicate nothing."""
    client.post("/fhir", json=back_pain_story("cc1"), headers=headers)
    wait_idle(client, headers)
    factory = session_factory(settings.resolved_database_url)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            evaluate_patient(factory, "cc1", settings=settings)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with transaction(factory) as session:
        open_eps = session.scalar(
            select(func.count()).select_from(Episode).where(Episode.patient_id == "cc1")
        )
        flags = session.scalar(
            select(func.count())
            .select_from(Resource)
            .where(Resource.type == "Flag", Resource.patient_id == "cc1")
        )
    assert open_eps == 1 and flags == 1


def test_parallel_first_evaluations_race_safely(
    settings: Settings, client: Any, headers: dict[str, str]
) -> None:
    """Data stored without the relay (so nothing is evaluated yet), then six evaluations race."""
    from service import bundles
    from service.auth import Principal
    from service.interactions import WriteContext

    factory = session_factory(settings.resolved_database_url)
    ctx = WriteContext(Principal("t", frozenset({"system/*.*"})))

    class _Scope:
        def __call__(self) -> Any:
            return transaction(factory)

    # Stored directly; outbox rows are written but we race the evaluations ourselves.
    bundles.process(_Scope(), ctx, back_pain_story("cc2"))
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def run() -> None:
        barrier.wait()
        try:
            evaluate_patient(factory, "cc2", settings=settings)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait_idle(client, headers)
    assert errors == []
    with transaction(factory) as session:
        eps = session.scalar(
            select(func.count()).select_from(Episode).where(Episode.patient_id == "cc2")
        )
        crs = session.scalar(
            select(func.count())
            .select_from(Resource)
            .where(Resource.type == "CommunicationRequest", Resource.patient_id == "cc2")
        )
    assert eps == 1 and crs == 1
