"""The worklist's browser session (issue 10): the cookie is the worklist's alone, sign-out
ends it on the server, sign-in is rate limited with an expiring lockout, passwords are kept
hashed, and cookies are `Secure` when the deployment says it is served over HTTPS."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from typer.testing import CliRunner

from service.config import Settings
from service.store.db import transaction
from service.store.models import SignInFailure, WebSession
from service.store.resources import utcnow
from service.web import passwords, throttle
from service.web.csrf import LOGIN_COOKIE
from service.web.sessions import COOKIE
from tests.api.web.support import ORIGIN, hidden_fields, planted_alert, sign_in, users_setting

REPO = Path(__file__).resolve().parents[3]
USERS = {"nurse": "correct horse battery", "charge": "pa:ss:word"}
for _i in range(6):
    USERS[f"float{_i}"] = f"float-password-{_i}"
USERS_SETTING = users_setting(USERS)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"worklist_users": USERS_SETTING})


def _flag(client: TestClient, headers: dict[str, str]) -> dict[str, str]:
    flag, _request = planted_alert("cookie-csrf", "urgent", 2, "Possible bone metastasis")
    r = client.put(f"/fhir/Flag/{flag['id']}", json=flag, headers=headers)
    assert r.status_code == 201, r.text
    return flag


def _as_cookie_everywhere(client: TestClient) -> str:
    """Take the session cookie and send it on every path (what an attacker's page would get
    the browser to send, had the cookie been scoped to `/`)."""
    key = client.cookies.get(COOKIE)
    assert key
    client.cookies.clear()
    client.cookies.set(COOKIE, key)
    return key


# --- The cookie does not authenticate /fhir ------------------------------------------------


def test_the_session_cookie_cannot_change_fhir_data(
    client: TestClient, headers: dict[str, str]
) -> None:
    flag = _flag(client, headers)
    assert sign_in(client, "nurse", USERS["nurse"]).status_code == 303
    _as_cookie_everywhere(client)
    assert client.get("/worklist").status_code == 200  # a live session

    evil = {"Origin": "https://evil.example"}
    # What a cross-site form or fetch can send: no Authorization, simple or empty Content-Type.
    r = client.delete(f"/fhir/Flag/{flag['id']}", headers=evil)
    assert r.status_code == 401, r.text
    r = client.request("DELETE", f"/fhir/Flag/{flag['id']}", headers={**evil, "Content-Type": ""})
    assert r.status_code == 401
    closed = {**flag, "status": "inactive"}
    r = client.put(f"/fhir/Flag/{flag['id']}", json=closed, headers=evil)
    assert r.status_code == 401
    r = client.post("/fhir/Flag", content=b'{"resourceType": "Flag"}', headers=evil)
    assert r.status_code == 401
    # same-origin does not make the cookie a credential for the API either
    assert client.get("/fhir/Flag", headers=ORIGIN).status_code == 401
    assert client.get(f"/fhir/Flag/{flag['id']}").status_code == 401

    stored = client.get(f"/fhir/Flag/{flag['id']}", headers=headers).json()
    assert stored["status"] == "active" and stored["meta"]["versionId"] == "1"


def test_the_cookie_is_scoped_to_the_worklist_and_holds_no_token(client: TestClient) -> None:
    r = sign_in(client, "nurse", USERS["nurse"])
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith(f"{COOKIE}="))
    assert "Path=/worklist" in cookie and "HttpOnly" in cookie
    key = client.cookies.get(COOKIE)
    assert key and key.count(".") < 2  # a random key, not a JWT with claims
    with transaction(client.app.state.session_factory) as db:  # type: ignore[attr-defined]
        rows = db.scalars(select(WebSession)).all()
    assert [row.key_hash for row in rows] == [hashlib.sha256(key.encode()).hexdigest()]
    assert rows[0].username == "nurse"


# --- Sign-out ends the session on the server ------------------------------------------------


def test_a_signed_out_cookie_is_refused(client: TestClient, headers: dict[str, str]) -> None:
    flag = _flag(client, headers)
    assert sign_in(client, "nurse", USERS["nurse"]).status_code == 303
    key = client.cookies.get(COOKIE)
    page = client.get("/worklist").text
    logout_token = hidden_fields(page, "/worklist/logout")[0]["csrf_token"]
    close = next(f for f in hidden_fields(page, "/worklist/close") if f["id"] == flag["id"])

    r = client.post(
        "/worklist/logout",
        data={"csrf_token": logout_token},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert r.status_code == 303

    # The copied cookie, replayed after sign-out: no page, no fragment, no action.
    client.cookies.clear()
    client.cookies.set(COOKIE, key)
    assert client.get("/worklist", follow_redirects=False).status_code == 303
    assert client.get("/worklist/fragment").status_code == 401
    r = client.post("/worklist/close", data=close, headers=ORIGIN, follow_redirects=False)
    assert r.status_code == 401
    assert client.get(f"/fhir/Flag/{flag['id']}", headers=headers).json()["status"] == "active"
    with transaction(client.app.state.session_factory) as db:  # type: ignore[attr-defined]
        assert db.scalars(select(WebSession)).all() == []


def test_sign_out_ends_only_that_session(client: TestClient) -> None:
    other = TestClient(client.app)
    assert sign_in(client, "nurse", USERS["nurse"]).status_code == 303
    assert sign_in(other, "nurse", USERS["nurse"]).status_code == 303
    token = hidden_fields(client.get("/worklist").text, "/worklist/logout")[0]["csrf_token"]
    client.post("/worklist/logout", data={"csrf_token": token}, headers=ORIGIN)
    assert client.get("/worklist", follow_redirects=False).status_code == 303
    assert other.get("/worklist", follow_redirects=False).status_code == 200


def test_an_expired_session_is_refused(client: TestClient) -> None:
    assert sign_in(client, "nurse", USERS["nurse"]).status_code == 303
    with transaction(client.app.state.session_factory) as db:  # type: ignore[attr-defined]
        db.execute(update(WebSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert client.get("/worklist", follow_redirects=False).status_code == 303


# --- Sign-in rate limit ---------------------------------------------------------------------


def test_wrong_passwords_lock_the_user_out_with_429(client: TestClient) -> None:
    for _ in range(throttle.PER_USER.max_failures - 1):
        assert sign_in(client, "nurse", "guess").status_code == 401
    r = sign_in(client, "nurse", "guess")
    assert r.status_code == 429
    assert 0 < int(r.headers["retry-after"]) <= 15 * 60
    assert "Too many failed sign-in attempts" in r.text and "15 minutes" in r.text
    # Locked: even the right password is refused, before it is checked.
    r = sign_in(client, "nurse", USERS["nurse"])
    assert r.status_code == 429 and COOKIE not in r.cookies
    assert "Retry-After" in r.headers
    # Another user from the same address is not locked by one user's failures.
    assert sign_in(client, "charge", USERS["charge"]).status_code == 303


def test_a_burst_of_parallel_guesses_gets_only_the_allowed_checks(client: TestClient) -> None:
    """300 guesses a second was the finding: in parallel, only `max_failures` passwords are
    ever checked; every other attempt is a 429 without a check."""
    checked: list[str] = []

    class Counting(passwords.Users):
        def check(self, username: str, password: str) -> bool:
            checked.append(username)
            return super().check(username, password)

    state = client.app.state  # type: ignore[attr-defined]
    state.worklist_users = Counting(state.worklist_users.hashes)
    statuses: list[int] = []
    lock = threading.Lock()

    def guess(i: int) -> None:
        status = sign_in(TestClient(client.app), "nurse", f"guess-{i}").status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(checked) == throttle.PER_USER.max_failures, (checked, statuses)
    assert set(statuses) <= {401, 429} and statuses.count(429) >= 12 - len(checked)
    assert sign_in(client, "nurse", USERS["nurse"]).status_code == 429


def test_the_lockout_expires(client: TestClient) -> None:
    for _ in range(throttle.PER_USER.max_failures):
        sign_in(client, "nurse", "guess")
    assert sign_in(client, "nurse", USERS["nurse"]).status_code == 429
    with transaction(client.app.state.session_factory) as db:  # type: ignore[attr-defined]
        db.execute(
            update(SignInFailure)
            .where(SignInFailure.key == throttle.user_key("nurse"))
            .values(locked_until=utcnow() - timedelta(seconds=1))
        )
    assert sign_in(client, "nurse", USERS["nurse"]).status_code == 303
    with transaction(client.app.state.session_factory) as db:  # type: ignore[attr-defined]
        assert db.get(SignInFailure, throttle.user_key("nurse")) is None  # success clears it


def test_one_address_spraying_many_users_is_locked_out(client: TestClient) -> None:
    """Few guesses per user, many users: the per-address limit stops it."""
    names = [u for u in USERS if u.startswith("float")]  # known users: a cheap hash each
    tries = 0
    while tries < throttle.PER_ADDRESS.max_failures - 1:
        name = names[tries % len(names)]
        assert sign_in(client, name, f"guess-{tries}").status_code == 401, tries
        tries += 1
    r = sign_in(client, "ghost", "guess")
    assert r.status_code == 429 and "Retry-After" in r.headers
    assert sign_in(client, "nurse", USERS["nurse"]).status_code == 429


def test_counters_are_shared_by_every_api_process(settings: Settings) -> None:
    """Two apps on one database (two API processes): failures add up across them."""
    from workers.embedded import build_app

    with (
        TestClient(build_app(settings, start_relay=False)) as a,
        TestClient(build_app(settings, start_relay=False)) as b,
    ):
        for i in range(throttle.PER_USER.max_failures):
            assert sign_in(a if i % 2 else b, "nurse", "guess").status_code in (401, 429)
        assert sign_in(a, "nurse", USERS["nurse"]).status_code == 429
        assert sign_in(b, "nurse", USERS["nurse"]).status_code == 429


def test_lockout_policy_is_a_window_and_an_expiry() -> None:
    limit = throttle.Limit(3, timedelta(minutes=15), timedelta(minutes=10))
    t0 = utcnow()
    c = throttle.after_failure(None, limit, t0)
    c = throttle.after_failure(c, limit, t0 + timedelta(minutes=1))
    assert c.failures == 2 and throttle.locked_seconds(c, t0) == 0
    c = throttle.after_failure(c, limit, t0 + timedelta(minutes=2))
    assert c.failures == 3
    assert throttle.locked_seconds(c, t0 + timedelta(minutes=2)) == 600
    assert throttle.locked_seconds(c, t0 + timedelta(minutes=11)) == 60
    assert throttle.locked_seconds(c, t0 + timedelta(minutes=12)) == 0  # expired
    # after the lockout a failure starts a new count
    c = throttle.after_failure(c, limit, t0 + timedelta(minutes=13))
    assert c.failures == 1 and c.locked_until is None
    # failures older than the window do not add up
    old = throttle.after_failure(None, limit, t0)
    fresh = throttle.after_failure(old, limit, t0 + timedelta(minutes=16))
    assert fresh.failures == 1


# --- Passwords are stored hashed -------------------------------------------------------------


def test_plain_passwords_are_hashed_at_load_and_dropped(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workers.embedded import build_app

    plain = {"nurse": "plain pass one", "charge": "plain:pass:two"}
    given = ",".join(f"{u}:{p}" for u, p in plain.items())
    monkeypatch.setenv(passwords.ENV, given)  # as a deployment gives it
    app_settings = settings.model_copy(update={"worklist_users": given})
    with TestClient(build_app(app_settings, start_relay=False)) as c:
        kept = c.app.state.settings.worklist_users  # type: ignore[attr-defined]
        for password in plain.values():
            assert password not in kept
            assert password not in os.environ[passwords.ENV]
        assert kept.count("$argon2id$") == 2
        assert os.environ[passwords.ENV] == kept
        assert set(passwords.parse(kept)) == set(plain)  # the hashed form reads back as is
        assert sign_in(c, "charge", plain["charge"]).status_code == 303


def test_hashed_entries_sign_in(settings: Settings) -> None:
    from service.cli import app as cli
    from workers.embedded import build_app

    result = CliRunner().invoke(cli, ["hash-password"], input="ward round 7\nward round 7\n")
    assert result.exit_code == 0, result.output
    hashed = result.output.strip().splitlines()[-1]
    assert hashed.startswith("$argon2id$") and "ward round 7" not in hashed
    hashed_settings = settings.model_copy(
        update={"worklist_users": f"ward:{hashed},nurse:{passwords.hash_password('n1')}"}
    )
    with TestClient(build_app(hashed_settings, start_relay=False)) as c:
        assert sign_in(c, "ward", "ward round 7").status_code == 303
        assert sign_in(TestClient(c.app), "nurse", "n1").status_code == 303
        assert sign_in(TestClient(c.app), "ward", hashed).status_code == 401  # not the hash


# --- Secure cookies --------------------------------------------------------------------------


@pytest.fixture
def https_deployment(settings: Settings) -> Iterator[TestClient]:
    from workers.embedded import build_app

    secure = settings.model_copy(update={"secure_cookies": True})
    with TestClient(build_app(secure, start_relay=False)) as c:
        yield c


def _set_cookies(response: object, name: str) -> str:
    headers = response.headers  # type: ignore[attr-defined]
    return next(h for h in headers.get_list("set-cookie") if h.startswith(f"{name}="))


def test_cookies_are_secure_when_the_deployment_says_https(https_deployment: TestClient) -> None:
    form = https_deployment.get("/worklist/login")
    assert "Secure" in _set_cookies(form, LOGIN_COOKIE)
    # (TestClient keeps Secure cookies off plain http; send the form token by hand.)
    token = hidden_fields(form.text, "/worklist/login")[0]["csrf_token"]
    https_deployment.cookies.set(LOGIN_COOKIE, token)
    r = https_deployment.post(
        "/worklist/login",
        data={"username": "nurse", "password": USERS["nurse"], "csrf_token": token},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert "Secure" in _set_cookies(r, COOKIE)


def test_cookies_are_not_secure_on_a_plain_http_deployment(client: TestClient) -> None:
    r = sign_in(client, "nurse", USERS["nurse"])
    assert "Secure" not in _set_cookies(r, COOKIE)


def test_compose_runs_the_api_with_secure_cookies() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    env = compose["services"]["api"]["environment"]
    assert str(env["ALERTS_SECURE_COOKIES"]).lower() == "true"
    assert env["ALERTS_DATABASE_URL"]  # the shared settings are still merged in
    assert Settings(secure_cookies=env["ALERTS_SECURE_COOKIES"]).secure_cookies is True
