"""The data dir holds the signing secret and (embedded) every patient's data: it is created
0700 and every file the service creates in it 0600, whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from service.auth import mint
from service.config import Settings
from tests.builders import days_ago, lab


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    old = os.umask(0o022)  # the common default: files 0644, directories 0755
    try:
        yield
    finally:
        os.umask(old)


def test_fresh_data_dir_is_private(tmp_path: Path, permissive_umask: None) -> None:
    from workers.embedded import build_app

    data = tmp_path / "fresh" / "data"
    settings = Settings(data_dir=data, database_url=None, broker_url=None, jwt_secret=None)
    with TestClient(build_app(settings)) as c:
        token = mint(settings.signing_secret())
        obs = lab("fm-1", "fm-pt", "17861-6", 10.9, "mg/dL", days_ago(1))
        r = c.put(
            "/fhir/Observation/fm-1",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"},
            content=orjson.dumps(obs),
        )
        assert r.status_code == 201, r.text
        files = sorted(p.name for p in data.iterdir())
        assert {"alerts.db", "jwt-secret", "alerts.db-wal", "alerts.db-shm"} <= set(files), files
        assert mode(data) == 0o700
        for p in data.iterdir():
            assert mode(p) == 0o600, (p.name, oct(mode(p)))


def test_existing_loose_modes_are_tightened(tmp_path: Path, permissive_umask: None) -> None:
    from service.store.db import make_engine

    data = tmp_path / "old"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    db = data / "alerts.db"
    db.write_bytes(b"")
    os.chmod(db, 0o644)
    wal = data / "alerts.db-wal"
    wal.write_bytes(b"")
    os.chmod(wal, 0o644)
    secret = data / "jwt-secret"
    secret.write_text("s" * 48)
    os.chmod(secret, 0o644)
    settings = Settings(data_dir=data, jwt_secret=None)
    settings.ensure_data_dir()
    assert settings.signing_secret() == "s" * 48
    make_engine(settings.resolved_database_url).dispose()
    assert mode(data) == 0o700
    assert [mode(p) for p in (db, wal, secret)] == [0o600] * 3


def test_sqlite_file_elsewhere_gets_a_private_new_directory(
    tmp_path: Path, permissive_umask: None
) -> None:
    from service.store.migrate import upgrade

    db = tmp_path / "new-dir" / "elsewhere.db"
    upgrade(f"sqlite:///{db}")
    assert mode(db.parent) == 0o700 and mode(db) == 0o600
