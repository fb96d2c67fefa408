"""Batched evaluation (issue 12): several patients in one transaction must decide exactly what
one-by-one evaluation decides, per patient clock, and complete only the outbox rows handed out.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.replay.expectations import actual_alerts, diff, load_expectations
from service.store import outbox
from service.store.db import transaction
from service.store.models import Outbox
from tests.conftest import FIXTURES
from workers import evaluation, tasks

BUNDLES = sorted(p for p in FIXTURES.glob("*.json") if not p.name.endswith(".expect.json"))


def _expect(bundle: Path) -> Path:
    return bundle.with_name(bundle.name.removesuffix(".json") + ".expect.json")


def _alerts(client: TestClient, headers: dict[str, str], patients: list[str]) -> Any:
    ids = ",".join(p.removeprefix("Patient/") for p in patients)
    found = {}
    for rtype in ("Flag", "CommunicationRequest"):
        r = client.get(f"/fhir/{rtype}", params={"patient": ids, "_count": "1000"}, headers=headers)
        assert r.status_code == 200, r.text
        found[rtype] = [e["resource"] for e in r.json().get("entry", [])]
    return actual_alerts(found["Flag"], found["CommunicationRequest"])


def _pending(factory: sessionmaker[Session]) -> int:
    with transaction(factory) as session:
        return session.scalar(select(func.count()).select_from(Outbox)) or 0


def test_every_fixture_in_one_batch_gives_the_expected_alerts(
    settings: Settings, headers: dict[str, str], factory: sessionmaker[Session]
) -> None:
    """All scenarios' patients, each with its own `asOf` clock, evaluated in ONE transaction."""
    from workers.embedded import build_app

    expectations = {b: load_expectations(_expect(b)) for b in BUNDLES}
    patients: set[str] = set()
    with TestClient(build_app(settings, start_relay=False)) as client:
        for bundle, expected in expectations.items():
            r = client.post(
                f"/fhir?asOf={expected.single_as_of}", content=bundle.read_bytes(), headers=headers
            )
            assert r.status_code == 200, r.text
            mine = {p.removeprefix("Patient/") for p in expected.patients}
            assert not mine & patients, f"{bundle.name} reuses a patient id"
            patients |= mine
        assert _pending(factory) > 0
        outcomes = evaluation.evaluate_patients(
            factory, [(p, None) for p in sorted(patients)], settings=settings
        )
        assert sorted(o.patient_id for o in outcomes) == sorted(patients)
        assert _pending(factory) == 0
        for bundle, expected in expectations.items():
            got = _alerts(client, headers, sorted(expected.patients))
            assert diff(expected, got) == [], bundle.name

        # A second batch over the same data changes nothing (idempotent, as one by one).
        again = evaluation.evaluate_patients(
            factory, [(p, None) for p in sorted(patients)], settings=settings
        )
        assert all(not o.written for o in again)


def test_a_batch_completes_only_the_rows_it_was_handed(
    settings: Settings, factory: sessionmaker[Session]
) -> None:
    """`upto`: a row written after the hand-off (or never dispatched) stays for its own turn."""
    with transaction(factory) as session:
        outbox.enqueue(session, ["ba", "bb"])
    with transaction(factory) as session:
        handed = {d.patient_id: d.upto for d in outbox.claim(session, redispatch_after=300)}
    with transaction(factory) as session:
        outbox.enqueue(session, ["ba"])  # after the hand-off
    evaluation.evaluate_patients(factory, sorted(handed.items()), settings=settings)
    with transaction(factory) as session:
        left = session.execute(select(Outbox.patient_id, Outbox.dispatched_at)).all()
    assert [(p, d) for p, d in left] == [("ba", None)]


def test_a_failing_batch_falls_back_to_one_by_one(
    settings: Settings, factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection (the only stub here): the batch read fails; every patient is still
    evaluated, each in its own transaction (a batch of one, through the real read), and its
    outbox rows completed."""
    with transaction(factory) as session:
        outbox.enqueue(session, ["fa", "fb", "fc"])
    real = evaluation.BatchReads.read
    calls: list[list[str]] = []

    def broken(session: Session, patient_ids: Sequence[str], **kwargs: Any) -> Any:
        calls.append(list(patient_ids))
        if len(patient_ids) > 1:
            raise RuntimeError("injected")
        return real(session, patient_ids, **kwargs)

    monkeypatch.setattr(evaluation.BatchReads, "read", broken)
    result = tasks.evaluate_patients.apply(
        args=[[["fa", None], ["fb", None], ["fc", None]]], kwargs={"settings": settings}
    )
    assert result.successful(), result.traceback
    assert calls == [["fa", "fb", "fc"], ["fa"], ["fb"], ["fc"]]
    assert _pending(factory) == 0
    monkeypatch.setattr(evaluation.BatchReads, "read", real)
