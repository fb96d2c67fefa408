"""The store speaks its own language (issue 11, item 4): it raises `VersionMismatch` and
`Conflict`, never HTTP-shaped errors; the worker catches them by type; the Subscription hook is
installed at startup, not imported by the store."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.errors import FHIRError
from service.store import hooks
from service.store import resources as store
from service.store.db import session_factory, transaction
from service.store.errors import Conflict, StoreError, VersionMismatch
from tests.builders import patient
from workers.alerts import Plan, ResourceWrite
from workers.evaluation import VersionConflict, _apply


@pytest.fixture
def factory(client: TestClient, settings: Settings) -> sessionmaker[Session]:
    """A migrated database, with the store hook installed by the app's startup."""
    return session_factory(settings.resolved_database_url)


def _save(session: Session, pid: str, **kwargs: Any) -> store.Stored:
    stored, _ = store.save(
        session, resource_type="Patient", resource_id=pid, resource=patient(pid), **kwargs
    )
    return stored


def test_a_stale_if_match_is_a_version_mismatch_not_an_http_error(
    factory: sessionmaker[Session],
) -> None:
    with transaction(factory) as session:
        _save(session, "vm1")
        _save(session, "vm1")  # version 2
    with pytest.raises(VersionMismatch) as caught, transaction(factory) as session:
        _save(session, "vm1", if_match='W/"1"')
    exc = caught.value
    assert not isinstance(exc, FHIRError) and not hasattr(exc, "status")
    assert (exc.resource_type, exc.resource_id, exc.expected, exc.current) == (
        "Patient",
        "vm1",
        "1",
        2,
    )
    assert str(exc) == "Version conflict: If-Match 1 but the current version is 2"
    with transaction(factory) as session:  # nothing of the refused write was stored
        current = store.read(session, "Patient", "vm1")
        assert current is not None and current.version_id == 2


def test_if_match_on_a_missing_resource_is_a_version_mismatch(
    factory: sessionmaker[Session],
) -> None:
    with pytest.raises(VersionMismatch) as caught, transaction(factory) as session:
        _save(session, "vm-none", if_match='W/"1"')
    assert caught.value.current is None
    assert str(caught.value) == "If-Match given but the resource does not exist"


def test_creating_an_existing_row_is_a_conflict(factory: sessionmaker[Session]) -> None:
    """`current=None` promises a new id; when the row exists after all (what a concurrent
    creator causes on PostgreSQL), the store says Conflict, not a driver IntegrityError."""
    with transaction(factory) as session:
        _save(session, "cf1")
    with pytest.raises(Conflict) as caught, transaction(factory) as session:
        _save(session, "cf1", current=None)
    assert isinstance(caught.value, StoreError) and not isinstance(caught.value, FHIRError)
    assert (caught.value.resource_type, caught.value.resource_id) == ("Patient", "cf1")


def test_the_worker_turns_a_version_mismatch_into_its_retry(
    factory: sessionmaker[Session],
) -> None:
    """A nurse changed the alert while the worker decided: the task retries (VersionConflict)."""
    with transaction(factory) as session:
        _save(session, "wk1")
        _save(session, "wk1")
    write = ResourceWrite("Patient", "wk1", patient("wk1"), if_match='W/"1"')
    with pytest.raises(VersionConflict), transaction(factory) as session:
        _apply(session, Plan(writes=(write,)), [])


def test_the_store_does_not_import_the_subscription_hook() -> None:
    code = (
        "import sys, service.store.resources\n"
        "assert 'service.subscriptions.hook' not in sys.modules, 'imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def no_hook() -> Iterator[None]:
    saved = list(hooks._installed)
    hooks._installed.clear()
    try:
        yield
    finally:
        hooks._installed[:] = saved


def test_a_save_without_an_installed_hook_fails_loudly(
    factory: sessionmaker[Session], no_hook: None
) -> None:
    """A process wired without the hook would store alerts whose notifications never go out."""
    with pytest.raises(RuntimeError, match="no store write hook"), transaction(factory) as session:
        _save(session, "nh1")


def _subscription_hook_runs(factory: sessionmaker[Session]) -> bool:
    """The installed hook is the Subscription one: it refuses a Subscription without reason."""
    try:
        with transaction(factory) as session:
            store.save(
                session,
                resource_type="Subscription",
                resource_id="no-reason",
                resource={"resourceType": "Subscription", "status": "off", "criteria": "Flag"},
            )
    except FHIRError as exc:
        return exc.status == 422 and "Subscription.reason" in str(exc.operation_outcome())
    return False


def test_the_app_and_the_celery_app_install_the_hook_at_startup(
    factory: sessionmaker[Session], settings: Settings, no_hook: None
) -> None:
    from service.api.app import create_app
    from workers.celery_app import make_celery

    create_app(settings, start_relay=False)
    assert _subscription_hook_runs(factory)
    hooks._installed.clear()
    make_celery()
    assert _subscription_hook_runs(factory)
