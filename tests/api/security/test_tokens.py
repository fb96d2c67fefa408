"""Bearer tokens: an audience (this server's FHIR base), a maximum lifetime, and HS256 secrets
long enough to be keys. `fhir-alerts token` mints what the server accepts."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import jwt
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from typer.testing import CliRunner

from service.auth import LOCAL_AUDIENCE, mint
from service.cli import app as cli
from service.config import Settings, get_settings


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_token_for_another_server_is_refused(client: TestClient, settings: Settings) -> None:
    secret = settings.signing_secret()
    other = mint(secret, audience="https://other-deployment.example.org/fhir")
    r = client.get("/ops/backlog", headers=bearer(other))
    assert r.status_code == 401
    assert "another server" in r.json()["issue"][0]["diagnostics"]
    own = mint(secret, audience="http://testserver/fhir")  # the base this request reached
    assert client.get("/ops/backlog", headers=bearer(own)).status_code == 200
    assert client.get("/ops/backlog", headers=bearer(mint(secret))).status_code == 200


def test_token_without_audience_is_refused(client: TestClient, settings: Settings) -> None:
    now = int(time.time())
    claims = {"iss": "fhir-alerts", "sub": "x", "scope": "system/*.*", "iat": now, "exp": now + 60}
    token = jwt.encode(claims, settings.signing_secret(), algorithm="HS256")
    assert client.get("/ops/backlog", headers=bearer(token)).status_code == 401


def test_public_base_url_is_the_only_audience(settings: Settings) -> None:
    from workers.embedded import build_app

    s = settings.model_copy(update={"public_base_url": "https://alerts.example.org"})
    secret = s.signing_secret()
    assert s.local_token_audience == "https://alerts.example.org/fhir"
    with TestClient(build_app(s)) as c:
        ok = mint(secret, audience="https://alerts.example.org/fhir")
        assert c.get("/ops/backlog", headers=bearer(ok)).status_code == 200
        for aud in (LOCAL_AUDIENCE, "http://testserver/fhir"):
            r = c.get("/ops/backlog", headers=bearer(mint(secret, audience=aud)))
            assert r.status_code == 401, aud


def test_tokens_living_longer_than_the_maximum_are_refused(settings: Settings) -> None:
    from workers.embedded import build_app

    s = settings.model_copy(update={"token_max_lifetime_seconds": 3600})
    with TestClient(build_app(s)) as c:
        secret = s.signing_secret()
        assert c.get("/ops/backlog", headers=bearer(mint(secret, ttl=3600))).status_code == 200
        r = c.get("/ops/backlog", headers=bearer(mint(secret, ttl=3601)))
        assert r.status_code == 401
        assert "longer than 3600" in r.json()["issue"][0]["diagnostics"]


def test_default_maximum_lifetime_refuses_a_year_long_token(
    client: TestClient, settings: Settings
) -> None:
    token = mint(settings.signing_secret(), ttl=365 * 86400)
    assert client.get("/ops/backlog", headers=bearer(token)).status_code == 401


def test_short_hs256_secret_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(ValidationError, match="at least 32"):
        Settings(data_dir=tmp_path, jwt_secret="x" * 31)
    monkeypatch.setenv("ALERTS_JWT_SECRET", "short-secret")
    with pytest.raises(ValidationError, match="ALERTS_JWT_SECRET is 12 bytes") as refused:
        Settings(data_dir=tmp_path)
    assert "short-secret" not in str(refused.value)  # the error never echoes the secret
    # 32 bytes is enough; multi-byte characters count as bytes.
    assert Settings(data_dir=tmp_path, jwt_secret="x" * 32).signing_secret() == "x" * 32
    with pytest.raises(ValidationError):
        Settings(data_dir=tmp_path, jwt_secret="é" * 15)


def test_generated_secret_is_long_enough(tmp_path: Path) -> None:
    secret = Settings(data_dir=tmp_path / "d", jwt_secret=None).signing_secret()
    assert len(secret.encode()) >= 32


def test_short_generated_secret_file_refuses_to_start(tmp_path: Path) -> None:
    (tmp_path / "jwt-secret").write_text("tampered")
    with pytest.raises(ValueError, match="shorter than 32 bytes"):
        Settings(data_dir=tmp_path, jwt_secret=None).signing_secret()


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    env = {
        "ALERTS_DATA_DIR": str(tmp_path / "cli-data"),
        "ALERTS_JWT_SECRET": "cli-" + uuid.uuid4().hex,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("ALERTS_PUBLIC_BASE_URL", raising=False)
    get_settings.cache_clear()
    yield env
    get_settings.cache_clear()


def test_cli_token_is_accepted_by_a_server_with_the_same_configuration(
    cli_env: dict[str, str], settings: Settings
) -> None:
    from workers.embedded import build_app

    result = CliRunner().invoke(cli, ["token", "--scope", "system/Flag.read"])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    s = settings.model_copy(update={"jwt_secret": cli_env["ALERTS_JWT_SECRET"]})
    with TestClient(build_app(s)) as c:
        assert c.get("/fhir/Flag?_count=1", headers=bearer(token)).status_code == 200
        assert c.get("/fhir/Patient?_count=1", headers=bearer(token)).status_code == 403


def test_cli_token_uses_the_public_base_and_refuses_too_long_ttl(
    cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALERTS_PUBLIC_BASE_URL", "https://alerts.example.org")
    get_settings.cache_clear()
    result = CliRunner().invoke(cli, ["token"])
    assert result.exit_code == 0, result.output
    claims = jwt.decode(result.stdout.strip(), options={"verify_signature": False})
    assert claims["aud"] == "https://alerts.example.org/fhir"
    too_long = CliRunner().invoke(cli, ["token", "--ttl", str(86400 + 1)])
    assert too_long.exit_code == 2


def test_public_base_url_and_clients_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="ALERTS_PUBLIC_BASE_URL"):
        Settings(data_dir=tmp_path, public_base_url="alerts.example.org")
    s = Settings(data_dir=tmp_path, public_base_url="https://alerts.example.org/", clients="")
    assert s.public_base_url == "https://alerts.example.org" and s.clients is None


def test_non_numeric_times_are_401_not_500(client: TestClient, settings: Settings) -> None:
    now = int(time.time())
    claims = {
        "iss": "fhir-alerts",
        "sub": "x",
        "aud": LOCAL_AUDIENCE,
        "scope": "system/*.*",
        "iat": str(now),
        "exp": now + 60,
    }
    token = jwt.encode(claims, settings.signing_secret(), algorithm="HS256")
    assert client.get("/ops/backlog", headers=bearer(token)).status_code == 401
