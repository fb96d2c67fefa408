"""Sign-in, sessions and CSRF: nothing about a patient reaches anyone who has not signed in,
and no state changes without a valid session, a same-origin request and the form's token."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from service.auth import mint
from service.config import Settings
from service.web.csrf import LOGIN_COOKIE
from service.web.sessions import COOKIE, SCOPE
from tests.api.web.conftest import USERS
from tests.api.web.support import ORIGIN, hidden_fields, sign_in
from tests.builders import back_pain_story
from tests.conftest import wait_idle


def _raise_alert(client: TestClient, headers: dict[str, str], pid: str) -> dict[str, Any]:
    """Post the back-pain story and return the CommunicationRequest the service raised."""
    r = client.post("/fhir", json=back_pain_story(pid), headers=headers)
    assert r.status_code == 200, r.text
    wait_idle(client, headers)
    found = client.get(f"/fhir/CommunicationRequest?patient={pid}", headers=headers).json()
    assert found["total"] == 1, found
    request: dict[str, Any] = found["entry"][0]["resource"]
    assert request["payload"][0]["contentString"]
    return request


def _leaks(text: str, pid: str, request: dict[str, Any]) -> bool:
    summary_start = request["payload"][0]["contentString"][:40]
    return pid in text or summary_start in text or request["id"] in text


def test_visitor_gets_no_alert_data(client: TestClient, headers: dict[str, str]) -> None:
    pid = "visitor-check-patient"
    request = _raise_alert(client, headers, pid)

    page = client.get("/worklist", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"].startswith("/worklist/login")
    assert not _leaks(page.text, pid, request)
    login = client.get("/worklist", follow_redirects=True)
    assert login.status_code == 200 and "Sign in" in login.text
    assert not _leaks(login.text, pid, request)

    fragment = client.get("/worklist/fragment")
    assert fragment.status_code == 401
    assert not _leaks(fragment.text, pid, request)

    # A token that is not a valid session: wrong signature, or a user not configured here.
    for bad in (
        mint("another-deployment-secret-" + "x" * 32, scope=SCOPE, subject="nurse"),
        mint(client.app.state.jwt_secret, scope=SCOPE, subject="mallory"),  # type: ignore[attr-defined]
        "not-a-jwt",
    ):
        client.cookies.set(COOKIE, bad)
        assert client.get("/worklist/fragment").status_code == 401
        r = client.get("/worklist", follow_redirects=False)
        assert r.status_code == 303 and not _leaks(r.text, pid, request)
        client.cookies.clear()

    # The same data is there for a signed-in nurse (so the checks above can fail), also when
    # the session token is set on the client the way the bad ones were.
    assert sign_in(client, "nurse", USERS["nurse"]).status_code == 303
    good = client.cookies.get(COOKIE)
    client.cookies.clear()
    client.cookies.set(COOKIE, good)
    signed_in = client.get("/worklist")
    assert signed_in.status_code == 200
    assert _leaks(signed_in.text, pid, request)
    assert signed_in.headers["cache-control"] == "no-store"
    assert _leaks(client.get("/worklist/fragment").text, pid, request)


def test_wrong_password_is_refused(client: TestClient) -> None:
    for user, password in (
        ("nurse", "wrong"),
        ("nurse", ""),
        ("nobody", USERS["nurse"]),
        ("nurse", USERS["charge"]),
        ("NURSE", USERS["nurse"]),
    ):
        r = sign_in(client, user, password)
        assert r.status_code == 401, (user, r.status_code)
        assert COOKIE not in r.cookies
        assert client.get("/worklist", follow_redirects=False).status_code == 303
    r = sign_in(client, "nurse", "wrong")
    assert "Wrong user name or password" in r.text


def test_sign_in_sets_a_strict_httponly_session_cookie(client: TestClient) -> None:
    r = sign_in(client, "charge", USERS["charge"])  # a password holding ':' signs in too
    assert r.status_code == 303 and r.headers["location"] == "/worklist"
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith(f"{COOKIE}="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/worklist" in cookie
    assert client.get("/worklist").status_code == 200
    # The cookie is the worklist's alone: the FHIR API wants a bearer token, even when the
    # cookie is sent along.
    key = client.cookies.get(COOKIE)
    assert key
    client.cookies.clear()
    client.cookies.set(COOKIE, key)  # for every path
    assert client.get("/worklist").status_code == 200
    assert client.get("/fhir/Flag").status_code == 401


def test_sign_in_refused_when_no_users_are_configured(settings: Settings) -> None:
    from workers.embedded import build_app

    bare = settings.model_copy(update={"worklist_users": ""})
    with TestClient(build_app(bare)) as client:
        form = client.get("/worklist/login")
        assert "Sign-in is not set up on this server" in form.text
        assert 'name="password"' not in form.text
        # Even a post carrying the form's double-submit token cannot sign in.
        token = client.cookies.get(LOGIN_COOKIE)
        assert token
        r = client.post(
            "/worklist/login",
            data={"username": "nurse", "password": USERS["nurse"], "csrf_token": token},
            headers=ORIGIN,
            follow_redirects=False,
        )
        assert r.status_code == 503
        assert "Sign-in is not set up" in r.text
        assert COOKIE not in r.cookies


def test_sign_in_form_needs_its_token_and_our_origin(client: TestClient) -> None:
    page = client.get("/worklist/login")
    token = hidden_fields(page.text, "/worklist/login")[0]["csrf_token"]
    good = {"username": "nurse", "password": USERS["nurse"], "csrf_token": token}
    cases = [
        ({**good, "csrf_token": ""}, ORIGIN),
        ({**good, "csrf_token": "forged"}, ORIGIN),
        (good, {"Origin": "https://evil.example"}),
        (good, {}),  # neither Origin nor Referer
    ]
    for data, hdrs in cases:
        r = client.post("/worklist/login", data=data, headers=hdrs, follow_redirects=False)
        assert r.status_code == 403, (data, hdrs)
        assert COOKIE not in r.cookies
    r = client.post(
        "/worklist/login",
        data=good,
        headers={"Referer": "http://testserver/worklist/login"},
        follow_redirects=False,
    )
    assert r.status_code == 303


def test_actions_need_the_csrf_token_and_same_origin(
    client: TestClient, headers: dict[str, str]
) -> None:
    pid = "csrf-check-patient"
    request = _raise_alert(client, headers, pid)
    assert sign_in(client, "nurse", USERS["nurse"]).status_code == 303
    page = client.get("/worklist").text
    ack = hidden_fields(page, "/worklist/acknowledge")[0]
    close = hidden_fields(page, "/worklist/close")[0]
    assert ack["id"] == request["id"]

    # Another session's token is no good here either.
    other = TestClient(client.app)
    assert sign_in(other, "charge", USERS["charge"]).status_code == 303
    other_token = hidden_fields(other.get("/worklist").text, "/worklist/acknowledge")[0][
        "csrf_token"
    ]
    assert other_token != ack["csrf_token"]

    for action, fields in (("/worklist/acknowledge", ack), ("/worklist/close", close)):
        for data, hdrs in (
            ({k: v for k, v in fields.items() if k != "csrf_token"}, ORIGIN),
            ({**fields, "csrf_token": "0" * 64}, ORIGIN),
            ({**fields, "csrf_token": other_token}, ORIGIN),
            (fields, {"Origin": "https://evil.example"}),
            (fields, {"Referer": "https://evil.example/page"}),
            (fields, {}),
        ):
            r = client.post(action, data=data, headers=hdrs, follow_redirects=False)
            assert r.status_code == 403, (action, data, hdrs)
    # GET never changes state.
    assert client.get("/worklist/acknowledge", params=ack).status_code in (404, 405)

    still = client.get(f"/fhir/CommunicationRequest/{request['id']}", headers=headers).json()
    assert still["status"] == "active" and still["meta"]["versionId"] == "1"
    flag = client.get(f"/fhir/Flag/{close['id']}", headers=headers).json()
    assert flag["status"] == "active" and flag["meta"]["versionId"] == close["version"]

    # Without a session at all: refused before anything is read.
    client.cookies.clear()
    r = client.post("/worklist/acknowledge", data=ack, headers=ORIGIN, follow_redirects=False)
    assert r.status_code == 401


def test_sign_out_ends_the_page_session(client: TestClient) -> None:
    assert sign_in(client, "nurse", USERS["nurse"]).status_code == 303
    page = client.get("/worklist").text
    token = hidden_fields(page, "/worklist/logout")[0]["csrf_token"]
    bad = client.post(
        "/worklist/logout", data={"csrf_token": "x"}, headers=ORIGIN, follow_redirects=False
    )
    assert bad.status_code == 403
    r = client.post(
        "/worklist/logout", data={"csrf_token": token}, headers=ORIGIN, follow_redirects=False
    )
    assert r.status_code == 303 and "signed-out" in r.headers["location"]
    assert COOKIE not in client.cookies
    assert client.get("/worklist", follow_redirects=False).status_code == 303
    assert client.get("/worklist/fragment").status_code == 401
