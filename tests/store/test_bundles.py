"""`service.bundles.process` directly against a real database (issue 11, item 8): the planned
entries run through the interactions in one unit of work, without HTTP. SQLite by default,
PostgreSQL with ALERTS_TEST_SERVERS=1. Which patients a batch or failed transaction enqueues is
in tests/store/test_write_path.py; the HTTP answers in tests/api/test_transactions.py."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service import bundles, interactions
from service.auth import Principal
from service.errors import FHIRError
from service.interactions import WriteContext
from service.store import resources as store
from service.store.db import transaction
from service.store.models import Outbox
from service.unit_of_work import UnitOfWork
from tests.builders import calcium, entry, patient, without_id


def _ctx() -> WriteContext:
    return WriteContext(Principal("t", frozenset({"system/*.*"})))


def _statuses(result: dict[str, Any]) -> list[str]:
    return [e["response"]["status"] for e in result["entry"]]


def test_a_transaction_rewrites_urn_references_to_the_ids_it_creates(
    factory: sessionmaker[Session],
) -> None:
    body = without_id(patient("ignored"))
    obs = without_id(calcium("ignored", "x"))
    obs["subject"] = {"reference": "urn:uuid:5e1f0c4a-0000-4000-8000-000000000001"}
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            entry("POST", "Observation", obs),
            entry(
                "POST", "Patient", body, full_url="urn:uuid:5e1f0c4a-0000-4000-8000-000000000001"
            ),
        ],
    }
    result = bundles.process(UnitOfWork(factory), _ctx(), bundle)
    assert result["type"] == "transaction-response"
    assert _statuses(result) == ["201 Created", "201 Created"]
    obs_ref, pat_ref = (e["fullUrl"] for e in result["entry"])
    assert pat_ref.startswith("Patient/") and obs_ref.startswith("Observation/")
    with transaction(factory) as s:
        stored = store.read(s, "Observation", obs_ref.split("/")[1])
        assert stored is not None and stored.json()["subject"] == {"reference": pat_ref}
        assert list(s.scalars(select(Outbox.patient_id))) == [pat_ref.split("/")[1]]


def test_a_failed_transaction_names_its_entry_and_stores_nothing(
    factory: sessionmaker[Session],
) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            entry("PUT", "Patient/t1", patient("t1")),
            entry("PUT", "Observation/t2", {**calcium("t2", "t1"), "status": "bogus"}),
        ],
    }
    with pytest.raises(FHIRError) as caught:
        bundles.process(UnitOfWork(factory), _ctx(), bundle)
    issue = caught.value.operation_outcome()["issue"][0]
    assert issue["diagnostics"].startswith("Bundle.entry[1]: ")
    assert issue["expression"][0] == "Bundle.entry[1]"
    with transaction(factory) as s:
        assert store.read(s, "Patient", "t1") is None


def test_a_batch_answers_every_kind_of_entry_on_its_own(factory: sessionmaker[Session]) -> None:
    ctx = _ctx()
    uow = UnitOfWork(factory)
    uow.run(ctx, lambda s: interactions.update(s, ctx, "Patient", "b1", patient("b1")))
    uow.run(ctx, lambda s: interactions.update(s, ctx, "Observation", "b2", calcium("b2", "b1")))
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            entry("GET", "Patient/b1"),
            entry("GET", "Patient/b1/_history/1"),
            entry("GET", "Patient/nobody"),
            entry("DELETE", "Observation/b2"),
            entry("DELETE", "Observation?code=http://loinc.org|0000-0"),
            entry("PUT", "Claim/c1", {"resourceType": "Claim", "id": "c1"}),
            entry("POST", "Patient", patient("dup"), ifNoneExist="identifier=urn:test:mrn|b1"),
        ],
    }
    result = bundles.process(uow, ctx, bundle)
    assert result["type"] == "batch-response"
    statuses = _statuses(result)
    assert statuses[:2] == ["200 OK", "200 OK"] and statuses[2].startswith("404")
    assert statuses[3:] == ["204 No Content", "204 No Content", "200 OK", "200 OK"]
    read, vread, unknown, _deleted, _noop, claim, matched = result["entry"]
    assert read["resource"]["id"] == vread["resource"]["id"] == "b1"
    assert read["response"]["etag"] == 'W/"1"'
    assert unknown["response"]["outcome"]["resourceType"] == "OperationOutcome"
    skipped = claim["response"]["outcome"]["issue"][0]
    assert skipped["severity"] == "information" and "Claim" in skipped["diagnostics"]
    assert matched["fullUrl"] == "Patient/b1" and "resource" not in matched
    with transaction(factory) as s:
        gone = store.read(s, "Observation", "b2")
        assert gone is not None and gone.deleted
        assert store.read(s, "Claim", "c1") is None


@pytest.mark.parametrize("kind", ["collection", "searchset", None])
def test_only_transactions_and_batches_are_processed(
    factory: sessionmaker[Session], kind: str | None
) -> None:
    bundle = {"resourceType": "Bundle", "type": kind, "entry": []}
    with pytest.raises(FHIRError) as caught:
        bundles.process(UnitOfWork(factory), _ctx(), bundle)
    assert caught.value.status == 422
