"""The write path, once (issue 11, item 5), tested directly: the unit of work writes the outbox
on commit (and only then); interactions answer the store's refusals with the contract's
statuses; PATCH and history live in the service, not the routes; Bundles run in one unit of
work; the `$evaluate` dry run is resolved by the service and evaluated by the evaluator the
composition root hands in, so no service module imports worker code outside the CLI."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service import bundles, dry_run, history, interactions
from service.api.app import create_app
from service.auth import Principal
from service.config import Settings
from service.errors import FHIRError
from service.interactions import WriteContext
from service.store import resources as store
from service.store.db import transaction
from service.store.models import Outbox, PatientLock
from service.unit_of_work import UnitOfWork
from tests.builders import back_pain_story, calcium, patient
from tests.builders import transaction as transaction_bundle

ROOT = Path(__file__).resolve().parents[2]


def _ctx(as_of: datetime | None = None) -> WriteContext:
    return WriteContext(Principal("t", frozenset({"system/*.*"})), as_of=as_of)


def _outbox(factory: sessionmaker[Session]) -> list[str]:
    with transaction(factory) as session:
        return sorted(session.scalars(select(Outbox.patient_id)))


def test_the_unit_of_work_writes_one_outbox_row_per_touched_patient_on_commit(
    factory: sessionmaker[Session],
) -> None:
    nudges: list[int] = []
    uow = UnitOfWork(factory, after_commit=lambda: nudges.append(1))
    ctx = _ctx()
    with uow(ctx) as session:
        interactions.update(session, ctx, "Patient", "u1", patient("u1"))  # not a trigger
        interactions.create(session, ctx, "Observation", calcium("o1", "u1"))
        interactions.create(session, ctx, "Observation", calcium("o2", "u1"))
        interactions.update(session, ctx, "Observation", "o3", calcium("o3", "u2"))
        assert list(session.scalars(select(Outbox.patient_id))) == []  # not before the commit
    assert _outbox(factory) == ["u1", "u2"]
    assert nudges == [1] and ctx.patients == set()


def test_a_rolled_back_unit_of_work_writes_nothing_and_forgets_its_patients(
    factory: sessionmaker[Session],
) -> None:
    nudges: list[int] = []
    uow = UnitOfWork(factory, after_commit=lambda: nudges.append(1))
    ctx = _ctx()
    with pytest.raises(FHIRError), uow(ctx) as session:
        interactions.update(session, ctx, "Observation", "r1", calcium("r1", "rb"))
        interactions.update(session, ctx, "Observation", "r1", calcium("r1", "rb"), if_match="9")
    assert _outbox(factory) == [] and ctx.patients == set() and nudges == []
    with transaction(factory) as session:
        assert store.read(session, "Observation", "r1") is None


def test_the_unit_of_work_sets_the_evaluation_clock_of_asof_writes(
    factory: sessionmaker[Session],
) -> None:
    at = datetime(2026, 6, 1, 12, 0)
    ctx = _ctx(as_of=at)
    UnitOfWork(factory).run(
        ctx, lambda s: interactions.create(s, ctx, "Observation", calcium("a1", "asof"))
    )
    with transaction(factory) as session:
        lock = session.get(PatientLock, "asof")
        assert lock is not None and lock.as_of == at
    assert _outbox(factory) == ["asof"]


def test_interactions_answer_a_stale_if_match_with_412(factory: sessionmaker[Session]) -> None:
    ctx = _ctx()
    uow = UnitOfWork(factory)
    uow.run(ctx, lambda s: interactions.update(s, ctx, "Patient", "s1", patient("s1")))
    with pytest.raises(FHIRError) as caught:
        uow.run(
            ctx,
            lambda s: interactions.update(s, ctx, "Patient", "s1", patient("s1"), if_match='"5"'),
        )
    assert caught.value.status == 412
    issue = caught.value.operation_outcome()["issue"][0]
    assert issue["code"] == "conflict"
    assert issue["diagnostics"] == "Version conflict: If-Match 5 but the current version is 1"


def test_interactions_answer_a_create_that_finds_its_row_taken_with_409(
    factory: sessionmaker[Session],
) -> None:
    ctx = _ctx()
    uow = UnitOfWork(factory)
    uow.run(ctx, lambda s: interactions.update(s, ctx, "Patient", "c1", patient("c1")))
    with pytest.raises(FHIRError) as caught:
        uow.run(
            ctx,
            lambda s: interactions.create(s, ctx, "Patient", patient("c1"), assigned_id="c1"),
        )
    assert caught.value.status == 409
    assert caught.value.operation_outcome()["issue"][0]["code"] == "conflict"


def test_patch_is_an_interaction(factory: sessionmaker[Session]) -> None:
    ctx = _ctx()
    uow = UnitOfWork(factory)
    uow.run(ctx, lambda s: interactions.update(s, ctx, "Patient", "p1", patient("p1")))

    def male(doc: dict[str, Any]) -> dict[str, Any]:
        return {**doc, "gender": "male"}

    stored = uow.run(ctx, lambda s: interactions.patch(s, ctx, "Patient", "p1", male))
    assert stored.version_id == 2 and stored.json()["gender"] == "male"
    with pytest.raises(FHIRError) as stale:
        uow.run(ctx, lambda s: interactions.patch(s, ctx, "Patient", "p1", male, if_match="1"))
    assert stale.value.status == 412
    with pytest.raises(FHIRError) as renamed:
        uow.run(
            ctx, lambda s: interactions.patch(s, ctx, "Patient", "p1", lambda d: {**d, "id": "x"})
        )
    assert renamed.value.status == 400


def test_history_is_an_interaction(factory: sessionmaker[Session]) -> None:
    ctx = _ctx()
    uow = UnitOfWork(factory)
    uow.run(ctx, lambda s: interactions.update(s, ctx, "Patient", "h1", patient("h1")))
    uow.run(ctx, lambda s: interactions.delete(s, ctx, "Patient", "h1"))
    with transaction(factory) as session:
        bundle = history.instance_history(session, ctx, "Patient", "h1", base="http://x/fhir")
        with pytest.raises(FHIRError) as unknown:
            history.instance_history(session, ctx, "Patient", "nobody", base="http://x/fhir")
    assert [e["response"]["status"] for e in bundle["entry"]] == ["204 No Content", "200 OK"]
    assert [e["request"]["method"] for e in bundle["entry"]] == ["DELETE", "POST"]
    assert bundle["total"] == 2 and "resource" not in bundle["entry"][0]
    assert unknown.value.status == 404


def test_a_batch_enqueues_only_the_entries_that_were_stored(
    factory: sessionmaker[Session],
) -> None:
    good = calcium("b-ok", "batch-ok")
    bad = {**calcium("b-bad", "batch-bad"), "status": "not-a-status"}
    body = {**transaction_bundle(good, bad), "type": "batch"}
    result = bundles.process(UnitOfWork(factory), _ctx(), body)
    statuses = [e["response"]["status"] for e in result["entry"]]
    assert statuses[0].startswith("201") and statuses[1].startswith("4")
    assert _outbox(factory) == ["batch-ok"]


def test_a_failed_transaction_enqueues_nothing(factory: sessionmaker[Session]) -> None:
    good = calcium("t-ok", "tx-ok")
    bad = {**calcium("t-bad", "tx-bad"), "status": "not-a-status"}
    ctx = _ctx()
    with pytest.raises(FHIRError):
        bundles.process(UnitOfWork(factory), ctx, transaction_bundle(good, bad))
    assert _outbox(factory) == [] and ctx.patients == set()


def test_the_dry_run_resolves_in_the_service_and_evaluates_in_the_evaluator(
    settings: Settings,
) -> None:
    """The evaluator gets plain resources, already resolved by the transaction planner (ids
    assigned, urn references rewritten) and validated."""
    from workers.dry_run import evaluator

    seen: list[list[dict[str, Any]]] = []
    real = evaluator(settings)

    def recording(resources: list[dict[str, Any]], at: datetime) -> list[dict[str, Any]]:
        seen.append(resources)
        return real(resources, at)

    story = back_pain_story("dr1")
    story["entry"][0]["request"] = {"method": "POST", "url": "Patient"}  # server-assigned id
    del story["entry"][0]["resource"]["id"]
    for entry in story["entry"][1:]:
        entry["resource"]["subject"] = {"reference": story["entry"][0]["fullUrl"]}
    result = dry_run.evaluate_bundle(story, datetime.now(UTC), recording)
    (resources,) = seen
    pid = resources[0]["id"]
    assert resources[0]["resourceType"] == "Patient" and pid
    assert {r["subject"]["reference"] for r in resources[1:]} == {f"Patient/{pid}"}
    kinds = sorted(e["resource"]["resourceType"] for e in result["entry"])
    assert kinds == ["CommunicationRequest", "Flag"]


def test_evaluate_needs_an_evaluator_composed_in(settings: Settings, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
    with TestClient(create_app(settings, start_relay=False)) as bare:
        r = bare.post("/fhir/$evaluate", json=back_pain_story("e1"), headers=headers)
        assert r.status_code == 501, r.text
        assert r.json()["resourceType"] == "OperationOutcome"
        assert "operation" not in bare.get("/fhir/metadata").json()["rest"][0]


def test_the_composed_app_evaluates_and_says_so(
    client: TestClient, headers: dict[str, str]
) -> None:
    r = client.post("/fhir/$evaluate", json=back_pain_story("e2"), headers=headers)
    assert r.status_code == 200, r.text
    assert len(r.json()["entry"]) == 2
    operations = client.get("/fhir/metadata").json()["rest"][0]["operation"]
    assert [o["name"] for o in operations] == ["evaluate"]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_service_module_but_the_cli_imports_workers() -> None:
    """`service.cli` is the composition root (with `workers.embedded.build_app`)."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "service").rglob("*.py"))
        if path.name != "cli.py" or path.parent.name != "service"
        if any(n == "workers" or n.startswith("workers.") for n in _imports(path))
    ]
    assert offenders == []
