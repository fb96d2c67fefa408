"""`service.interactions` directly against a real database (issue 11, item 8): the FHIR
interactions routes and Bundles share, without HTTP. SQLite by default, PostgreSQL with
ALERTS_TEST_SERVERS=1. The 412/409 answers to store refusals, PATCH and history are in
tests/store/test_write_path.py; these cover the rest: conditional matching and its rights,
reads of deleted and unknown versions, id rules of PUT and which patients a write touches."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from service import interactions
from service.auth import Principal
from service.errors import FHIRError
from service.interactions import WriteContext
from service.store.db import transaction
from service.unit_of_work import UnitOfWork
from tests.builders import LOINC, calcium, patient

ALL = frozenset({"system/*.*"})


def _ctx(*scopes: str) -> WriteContext:
    return WriteContext(Principal("t", frozenset(scopes) if scopes else ALL))


def _status(call: Any) -> int:
    with pytest.raises(FHIRError) as caught:
        call()
    return caught.value.status


@pytest.fixture
def uow(factory: sessionmaker[Session]) -> UnitOfWork:
    uow = UnitOfWork(factory)
    ctx = _ctx()
    for pid in ("p1", "p2"):
        uow.run(ctx, lambda s, pid=pid: interactions.update(s, ctx, "Patient", pid, patient(pid)))
    uow.run(ctx, lambda s: interactions.update(s, ctx, "Observation", "o1", calcium("o1", "p1")))
    uow.run(ctx, lambda s: interactions.update(s, ctx, "Observation", "o2", calcium("o2", "p1")))
    return uow


def test_conditional_create_matches_none_one_or_refuses_several(uow: UnitOfWork) -> None:
    ctx = _ctx()

    def match(criteria: str) -> str | None:
        return uow.run(
            ctx, lambda s: interactions.conditional_create_match(s, ctx, "Patient", criteria)
        )

    assert match("identifier=urn:test:mrn|p1") == "p1"
    assert match("identifier=urn:test:mrn|nobody") is None
    several = uow.run(
        ctx,
        lambda s: _status(
            lambda: interactions.conditional_create_match(
                s, ctx, "Observation", f"code={LOINC}|17861-6"
            )
        ),
    )
    assert several == 412
    empty = uow.run(
        ctx, lambda s: _status(lambda: interactions.match_ids(s, "Patient", "_count=5"))
    )
    assert empty == 400  # criteria of nothing but _count match everything: refused


def test_create_with_if_none_exist_returns_the_match_and_writes_nothing(uow: UnitOfWork) -> None:
    ctx = _ctx()
    stored, status = uow.run(
        ctx,
        lambda s: interactions.create(
            s, ctx, "Patient", patient("ignored"), if_none_exist="identifier=urn:test:mrn|p2"
        ),
    )
    assert (status, stored.id, stored.version_id) == (200, "p2", 1)
    created, status = uow.run(
        ctx,
        lambda s: interactions.create(
            s, ctx, "Patient", patient("x"), if_none_exist="identifier=urn:test:mrn|fresh"
        ),
    )
    assert status == 201 and created.id not in ("x", "p1", "p2")  # the server assigns the id
    bad = uow.run(
        ctx,
        lambda s: _status(
            lambda: interactions.create(s, ctx, "Patient", patient("y"), if_none_exist="x=y&")
        ),
    )
    assert bad == 400


def test_conditional_matching_checks_every_right_before_looking(
    uow: UnitOfWork, factory: sessionmaker[Session]
) -> None:
    """A token that may only create (or only delete) learns nothing about what exists."""
    create_only = _ctx("system/Patient.c")
    delete_only = _ctx("system/Patient.d")
    criteria = "identifier=urn:test:mrn|p1"
    with transaction(factory) as s:
        assert interactions.conditional_create_match(s, create_only, "Patient", criteria) == "p1"
        assert (
            _status(
                lambda: interactions.conditional_update_target(
                    s, create_only, "Patient", criteria, None
                )
            )
            == 403
        )
        assert (
            _status(
                lambda: interactions.conditional_delete_target(s, delete_only, "Patient", criteria)
            )
            == 403
        )


def test_conditional_update_target_rules(uow: UnitOfWork, factory: sessionmaker[Session]) -> None:
    ctx = _ctx()
    with transaction(factory) as s:

        def target(criteria: str, body_id: str | None) -> str | None:
            return interactions.conditional_update_target(s, ctx, "Patient", criteria, body_id)

        assert target("identifier=urn:test:mrn|p1", None) == "p1"
        assert target("identifier=urn:test:mrn|p1", "p1") == "p1"
        assert target("identifier=urn:test:mrn|none", None) is None
        assert target("identifier=urn:test:mrn|none", "new-id") is None
        assert _status(lambda: target("identifier=urn:test:mrn|p1", "p2")) == 400
        # No match, but the body's id is taken by a record the criteria did not find.
        assert _status(lambda: target("identifier=urn:test:mrn|none", "p2")) == 409
        assert _status(lambda: target("gender=female", None)) == 412


def test_conditional_update_creates_with_the_body_id_or_updates_the_match(
    uow: UnitOfWork,
) -> None:
    ctx = _ctx()
    body = {**patient("p1"), "gender": "other"}
    del body["id"]
    stored, status = uow.run(
        ctx,
        lambda s: interactions.conditional_update(
            s, ctx, "Patient", "identifier=urn:test:mrn|p1", body
        ),
    )
    assert (status, stored.id, stored.version_id) == (200, "p1", 2)
    new = {**patient("p9"), "identifier": [{"system": "urn:test:mrn", "value": "nine"}]}
    stored, status = uow.run(
        ctx,
        lambda s: interactions.conditional_update(
            s, ctx, "Patient", "identifier=urn:test:mrn|nine", new
        ),
    )
    assert (status, stored.id) == (201, "p9")
    assert (
        uow.run(
            ctx,
            lambda s: _status(
                lambda: interactions.conditional_update(
                    s, ctx, "Patient", "identifier=urn:test:mrn|p1", {**body, "id": 7}
                )
            ),
        )
        == 400
    )


def test_conditional_delete_deletes_the_one_match_and_none_is_not_an_error(
    uow: UnitOfWork, factory: sessionmaker[Session]
) -> None:
    ctx = _ctx()
    gone = uow.run(
        ctx,
        lambda s: interactions.conditional_delete(s, ctx, "Patient", "identifier=urn:test:mrn|p2"),
    )
    again = uow.run(
        ctx,
        lambda s: interactions.conditional_delete(s, ctx, "Patient", "identifier=urn:test:mrn|p2"),
    )
    assert (gone, again) == (1, 0)
    with transaction(factory) as s:
        assert _status(lambda: interactions.read(s, ctx, "Patient", "p2")) == 410


def test_read_and_vread_of_unknown_deleted_and_impossible_versions(
    uow: UnitOfWork, factory: sessionmaker[Session]
) -> None:
    ctx = _ctx()
    uow.run(ctx, lambda s: interactions.delete(s, ctx, "Observation", "o2"))
    with transaction(factory) as s:
        assert interactions.read(s, ctx, "Observation", "o1").version_id == 1
        assert interactions.vread(s, ctx, "Observation", "o2", "1").json()["id"] == "o2"
        statuses = [
            _status(lambda: interactions.read(s, ctx, "Observation", "nobody")),
            _status(lambda: interactions.read(s, ctx, "Observation", "o2")),
            _status(lambda: interactions.vread(s, ctx, "Observation", "o2", "2")),
            _status(lambda: interactions.vread(s, ctx, "Observation", "o1", "9")),
            _status(lambda: interactions.vread(s, ctx, "Observation", "o1", "one")),
            _status(lambda: interactions.vread(s, ctx, "Observation", "o1", "0")),
            _status(lambda: interactions.vread(s, ctx, "Observation", "o1", str(2**31))),
            _status(lambda: interactions.read(s, ctx, "Claim", "c1")),
            _status(lambda: interactions.read(s, _ctx("system/Patient.read"), "Observation", "o1")),
        ]
    assert statuses == [404, 410, 410, 404, 404, 404, 404, 404, 403]


def test_put_needs_the_url_id_in_the_body_and_create_rights_for_a_new_id(
    uow: UnitOfWork, factory: sessionmaker[Session]
) -> None:
    ctx = _ctx()
    no_id = {k: v for k, v in patient("n1").items() if k != "id"}
    update_only = _ctx("system/Patient.u")
    with transaction(factory) as s:
        assert _status(lambda: interactions.update(s, ctx, "Patient", "n1", no_id)) == 400
        assert _status(lambda: interactions.update(s, ctx, "Patient", "n2", patient("n1"))) == 400
        assert (
            _status(lambda: interactions.update(s, ctx, "Patient", "n1", {"resourceType": 1}))
            == 400
        )
        # Updating needs update rights; a PUT that creates needs create rights.
        assert interactions.update(s, update_only, "Patient", "p1", patient("p1"))[1] == 200
        assert (
            _status(lambda: interactions.update(s, update_only, "Patient", "n3", patient("n3")))
            == 403
        )


def test_writes_record_the_patients_to_evaluate(
    uow: UnitOfWork, factory: sessionmaker[Session]
) -> None:
    """Clinical writes touch their patient, and a record moved to another patient touches
    both (the old one may lose an alert); a Patient write touches nobody."""
    ctx = _ctx()
    with transaction(factory) as s:
        interactions.update(s, ctx, "Patient", "p1", {**patient("p1"), "gender": "other"})
        assert ctx.patients == set()
        interactions.update(s, ctx, "Observation", "o1", calcium("o1", "p2", 11.0))
        assert ctx.patients == {"p1", "p2"}
        ctx.patients.clear()
        interactions.delete(s, ctx, "Observation", "o2")
        assert ctx.patients == {"p1"}
        ctx.patients.clear()
        assert interactions.delete(s, ctx, "Observation", "never-stored") is None
        assert ctx.patients == set()
