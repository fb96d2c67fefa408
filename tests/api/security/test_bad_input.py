"""Issue 10, "Bad input": no request a client can send gets a 5xx. Each case of the finding is
replayed through the real HTTP API on the test's store (SQLite, or PostgreSQL with
ALERTS_TEST_SERVERS=1) and must get a 4xx OperationOutcome that names what is wrong, and the
store must not have taken it. The safety net for whatever still fails (a closed 500 with a
request id, logged without its message), the body deadline and `Allow` on 405 are here too.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service import interactions
from service.config import Settings
from tests.builders import days_ago, lab, patient

ROOT = Path(__file__).resolve().parents[3]


def _obs(**kw: Any) -> dict[str, Any]:
    o = lab("o1", "p1", "17861-6", 9.5, "mg/dL", days_ago(3))
    o.pop("id")
    o.update(kw)
    return o


def _outcome(r: httpx.Response, status: int | tuple[int, ...]) -> list[dict[str, Any]]:
    statuses = status if isinstance(status, tuple) else (status,)
    assert r.status_code in statuses, (r.status_code, r.text)
    body = r.json()
    assert body["resourceType"] == "OperationOutcome", body
    return list(body["issue"])


def _count(client: TestClient, headers: dict[str, str], rtype: str) -> int:
    r = client.get(f"/fhir/{rtype}", headers=headers)
    assert r.status_code == 200, r.text
    return len(r.json().get("entry", []))


# --- Wrong JSON types: named by element path and expected type ------------------------------


@pytest.mark.parametrize(
    ("change", "path", "expected"),
    [
        ({"status": ["final"]}, "Observation.status", "a single code"),
        ({"status": {"code": "final"}}, "Observation.status", "a string (code)"),
        ({"code": "17861-6"}, "Observation.code", "an object (CodeableConcept)"),
        ({"subject": ["Patient/p1"]}, "Observation.subject", "a single Reference"),
        ({"valueQuantity": {"value": "9.5"}}, "Observation.valueQuantity.value", "a number"),
        ({"valueBoolean": "yes", "valueQuantity": None}, "Observation.valueBoolean", "a boolean"),
        ({"effectiveDateTime": 20240101}, "Observation.effectiveDateTime", "a string (dateTime)"),
        ({"category": {"text": "lab"}}, "Observation.category", "an array of CodeableConcept"),
    ],
)
def test_a_wrong_json_type_is_named_with_its_path(
    client: TestClient, headers: dict[str, str], change: dict[str, Any], path: str, expected: str
) -> None:
    body = {k: v for k, v in _obs(**change).items() if v is not None}
    issues = _outcome(client.post("/fhir/Observation", json=body, headers=headers), 422)
    issue = next(i for i in issues if i.get("expression") == [path])
    assert f"expected {expected}" in issue["diagnostics"], issue
    assert "Invalid JSON" not in issue["diagnostics"]
    assert _count(client, headers, "Observation") == 0


def test_a_wrong_json_type_in_a_bundle_entry_is_a_4xx(
    client: TestClient, headers: dict[str, str]
) -> None:
    entry = {
        "resource": _obs(status=["final"]),
        "request": {"method": "POST", "url": "Observation"},
    }
    r = client.post(
        "/fhir",
        json={"resourceType": "Bundle", "type": "transaction", "entry": [entry]},
        headers=headers,
    )
    issues = _outcome(r, 422)
    assert any("Observation.status" in i["diagnostics"] for i in issues)
    r = client.post(
        "/fhir", json={"resourceType": "Bundle", "type": "batch", "entry": [entry]}, headers=headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["entry"][0]["response"]["status"].startswith("422")


# --- Instants at the ends of the calendar, and impossible offsets ---------------------------

EXTREME = [
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T05:00:00+05:30",
    "9999-12-31T23:59:59-14:00",
    "9999-12-31T23:00:00-01:00",
]
BAD_OFFSET = ["2024-05-01T10:00:00+99:99", "2024-05-01T10:00:00+15:00", "2024-05-01T10:00:00-00:60"]


@pytest.mark.parametrize("value", EXTREME + BAD_OFFSET)
@pytest.mark.parametrize(
    ("element", "wrap"),
    [
        ("Observation.effectiveDateTime", lambda v: {"effectiveDateTime": v}),
        ("Observation.issued", lambda v: {"issued": v}),
        (
            "Observation.effectivePeriod.start",
            lambda v: {"effectiveDateTime": None, "effectivePeriod": {"start": v}},
        ),
        (
            "Observation.extension[0].valueDateTime",
            lambda v: {"extension": [{"url": "http://example.org/x", "valueDateTime": v}]},
        ),
    ],
)
def test_impossible_instants_in_bodies_are_refused(
    client: TestClient, headers: dict[str, str], value: str, element: str, wrap: Any
) -> None:
    body = {k: v for k, v in _obs(**wrap(value)).items() if v is not None}
    issues = _outcome(client.post("/fhir/Observation", json=body, headers=headers), (400, 422))
    assert any(i.get("expression") == [element] for i in issues), issues
    entry = {"resource": body, "request": {"method": "POST", "url": "Observation"}}
    r = client.post(
        "/fhir",
        json={"resourceType": "Bundle", "type": "transaction", "entry": [entry]},
        headers=headers,
    )
    _outcome(r, (400, 422))
    assert _count(client, headers, "Observation") == 0


@pytest.mark.parametrize("value", [*EXTREME, "2024-05-01T10:00:00+99:99"])
def test_impossible_as_of_is_refused(
    client: TestClient, headers: dict[str, str], value: str
) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": patient("p1")}],
    }
    for url, body in [
        ("/fhir/$evaluate", bundle),
        ("/fhir", {"resourceType": "Bundle", "type": "batch", "entry": []}),
        ("/fhir/Observation", _obs()),
    ]:
        r = client.post(url, params={"asOf": value}, json=body, headers=headers)
        issues = _outcome(r, 400)
        assert "asOf" in issues[0]["diagnostics"], issues


def test_dates_at_the_ends_of_the_calendar_are_still_accepted(
    client: TestClient, headers: dict[str, str]
) -> None:
    # The refusal is about instants that leave the calendar in UTC, not about the years.
    for value in ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59+14:00", "0001-01-01T12:00:00-14:00"]:
        r = client.post("/fhir/Observation", json=_obs(effectiveDateTime=value), headers=headers)
        assert r.status_code == 201, (value, r.text)


# --- History versions beyond the integer range ----------------------------------------------


@pytest.mark.parametrize("version", ["2147483648", "9223372036854775808", "9" * 30, "0", "-1"])
def test_history_version_out_of_range_is_not_found(
    client: TestClient, headers: dict[str, str], version: str
) -> None:
    assert client.put("/fhir/Patient/p1", json=patient("p1"), headers=headers).status_code == 201
    _outcome(client.get(f"/fhir/Patient/p1/_history/{version}", headers=headers), 404)
    assert client.get("/fhir/Patient/p1/_history/1", headers=headers).status_code == 200


# --- Nesting --------------------------------------------------------------------------------


def _nested_extension(depth: int) -> dict[str, Any]:
    ext: dict[str, Any] = {"url": "http://example.org/leaf", "valueString": "x"}
    for _ in range(depth):
        ext = {"url": "http://example.org/node", "extension": [ext]}
    return ext


@pytest.mark.parametrize("depth", [70, 150, 400])
def test_deeply_nested_extensions_are_refused(
    client: TestClient, headers: dict[str, str], depth: int
) -> None:
    body = _obs(extension=[_nested_extension(depth)])
    issues = _outcome(client.post("/fhir/Observation", json=body, headers=headers), (400, 422))
    assert issues[0]["code"] == "too-costly"
    assert "levels deep" in issues[0]["diagnostics"]
    entry = {"resource": body, "request": {"method": "POST", "url": "Observation"}}
    r = client.post(
        "/fhir",
        json={"resourceType": "Bundle", "type": "transaction", "entry": [entry]},
        headers=headers,
    )
    _outcome(r, (400, 422))
    assert _count(client, headers, "Observation") == 0


def test_ordinary_nesting_is_accepted(client: TestClient, headers: dict[str, str]) -> None:
    r = client.post(
        "/fhir/Observation", json=_obs(extension=[_nested_extension(10)]), headers=headers
    )
    assert r.status_code == 201, r.text


# --- NUL and other control characters --------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "path"),
    [
        ({"name": [{"family": "Do\u0000e"}]}, "Patient.name[0].family"),
        (
            {"identifier": [{"system": "urn:mrn", "value": "12\u00003"}]},
            "Patient.identifier[0].value",
        ),
        ({"gender": "female\u0000"}, "Patient.gender"),
        ({"name": [{"text": "bell\u0007"}]}, "Patient.name[0].text"),
    ],
)
def test_control_characters_in_bodies_are_refused(
    client: TestClient, headers: dict[str, str], resource: dict[str, Any], path: str
) -> None:
    body = {"resourceType": "Patient", **resource}
    issues = _outcome(client.post("/fhir/Patient", json=body, headers=headers), 422)
    assert any(i.get("expression") == [path] for i in issues), issues
    r = client.put("/fhir/Patient/p1", json={**body, "id": "p1"}, headers=headers)
    _outcome(r, 422)
    assert _count(client, headers, "Patient") == 0


def test_tabs_and_newlines_are_still_accepted(client: TestClient, headers: dict[str, str]) -> None:
    body = {"resourceType": "Patient", "name": [{"text": "Ada\tLovelace\r\nsecond line"}]}
    assert client.post("/fhir/Patient", json=body, headers=headers).status_code == 201


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("PUT", "/fhir/Patient/p%001"),
        ("GET", "/fhir/Patient/p%001"),
        ("GET", "/fhir/Patient?identifier=urn:mrn|1%002"),
        ("GET", "/fhir/Patient?name=%00"),
        ("GET", "/fhir/Patient/p1/_history/1%00"),
        ("DELETE", "/fhir/Patient?identifier=%00"),
    ],
)
def test_nul_in_the_url_is_refused(
    client: TestClient, headers: dict[str, str], method: str, url: str
) -> None:
    body = {"resourceType": "Patient", "id": "p\u00001"} if method == "PUT" else None
    r = client.request(method, url, json=body, headers=headers)
    issues = _outcome(r, 400)
    assert "NUL" in issues[0]["diagnostics"]


def test_nul_in_search_values_outside_the_url_is_refused(
    client: TestClient, headers: dict[str, str]
) -> None:
    """The same NUL through the other doors to search: a form, If-None-Exist, and Bundle
    entries (conditional create, batch search)."""
    form = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
    r = client.post("/fhir/Patient/_search", content=b"identifier=a%00b", headers=form)
    _outcome(r, 400)
    r = client.post(
        "/fhir/Patient",
        json=patient("p1"),
        headers={**headers, "If-None-Exist": "identifier=urn:mrn|a%00b"},
    )
    _outcome(r, 400)
    create = {
        "resource": {"resourceType": "Patient"},
        "request": {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=a%00b"},
    }
    r = client.post(
        "/fhir",
        json={"resourceType": "Bundle", "type": "transaction", "entry": [create]},
        headers=headers,
    )
    _outcome(r, 400)
    read = {"request": {"method": "GET", "url": "Patient?identifier=a%00b"}}
    r = client.post(
        "/fhir", json={"resourceType": "Bundle", "type": "batch", "entry": [read]}, headers=headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["entry"][0]["response"]["status"].startswith("400")
    assert _count(client, headers, "Patient") == 0


# --- $evaluate takes a Bundle ---------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        patient("p1"),
        {"resourceType": "Observation", "status": "final", "code": {"text": "calcium"}},
        [],
        {"resourceType": "Parameters"},
        "Bundle",
    ],
)
def test_evaluate_refuses_a_body_that_is_not_a_bundle(
    client: TestClient, headers: dict[str, str], body: Any
) -> None:
    issues = _outcome(client.post("/fhir/$evaluate", json=body, headers=headers), 400)
    assert "Bundle" in issues[0]["diagnostics"]


def test_evaluate_still_takes_a_bundle(client: TestClient, headers: dict[str, str]) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": patient("p1")}],
    }
    r = client.post("/fhir/$evaluate", json=bundle, headers=headers)
    assert r.status_code == 200 and r.json()["resourceType"] == "Bundle", r.text


# --- Invalid FHIR: long ids, empty arrays and objects, nulls --------------------------------

LONG_ID = "a" * 65


@pytest.mark.parametrize(
    ("resource", "path"),
    [
        ({"id": LONG_ID}, "Patient.id"),
        ({"id": "bad id!"}, "Patient.id"),
        ({"name": []}, "Patient.name"),
        ({"name": [{"given": []}]}, "Patient.name[0].given"),
        ({"name": None}, "Patient.name"),
        ({"gender": None}, "Patient.gender"),
        ({"name": [None]}, "Patient.name[0]"),
        ({"name": [{"given": ["Ada", None]}]}, "Patient.name[0].given[1]"),
        ({"name": [{}]}, "Patient.name[0]"),
        ({"meta": {}}, "Patient.meta"),
        ({"multipleBirthInteger": 2**31}, "Patient.multipleBirthInteger"),
    ],
)
def test_invalid_fhir_json_is_refused(
    client: TestClient, headers: dict[str, str], resource: dict[str, Any], path: str
) -> None:
    body = {"resourceType": "Patient", **resource}
    issues = _outcome(client.post("/fhir/Patient", json=body, headers=headers), 422)
    assert any(i.get("expression") == [path] for i in issues), issues
    assert _count(client, headers, "Patient") == 0


def test_a_put_with_an_id_longer_than_64_is_refused(
    client: TestClient, headers: dict[str, str]
) -> None:
    r = client.put(f"/fhir/Patient/{LONG_ID}", json=patient(LONG_ID), headers=headers)
    issues = _outcome(r, 422)
    assert issues[0]["expression"] == ["Patient.id"]
    assert (
        client.put("/fhir/Patient/" + "a" * 64, json=patient("a" * 64), headers=headers).status_code
        == 201
    )


def test_null_paired_with_a_primitive_extension_is_accepted(
    client: TestClient, headers: dict[str, str]
) -> None:
    # FHIR JSON's one place for null: arrays of primitives aligned with their "_name" array.
    name = {
        "given": ["Ada", None],
        "_given": [None, {"extension": [{"url": "http://example.org/x", "valueString": "y"}]}],
    }
    r = client.post(
        "/fhir/Patient", json={"resourceType": "Patient", "name": [name]}, headers=headers
    )
    assert r.status_code == 201, r.text


# --- What still fails: a closed 500, logged by type and request id only ---------------------

SECRET = "Jane Doe MRN 8675309"


def _explode(*_args: Any, **_kwargs: Any) -> Any:
    raise RuntimeError(SECRET)


def test_an_unexpected_error_is_a_closed_500_without_its_message(
    client: TestClient,
    headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(interactions, "read", _explode)
    with caplog.at_level(logging.DEBUG):
        r = client.get("/fhir/Patient/p1", headers=headers)
    issues = _outcome(r, 500)
    assert r.headers["connection"] == "close"
    request_id = r.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert request_id in issues[0]["diagnostics"]
    assert SECRET not in r.text
    errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert len(errors) == 1, caplog.text
    assert errors[0].getMessage() == f"unexpected RuntimeError; request {request_id}"
    assert errors[0].exc_info is None
    assert SECRET not in caplog.text and "Traceback" not in caplog.text


@contextmanager
def _uvicorn_thread(app: FastAPI) -> Iterator[int]:
    """The app under a real uvicorn on a loopback port, its logs going to the root logger."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, log_level="info", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def test_uvicorn_logs_no_traceback_for_a_500_and_keeps_serving(
    settings: Settings,
    token: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from workers.embedded import build_app

    monkeypatch.setattr(interactions, "read", _explode)
    auth = {"Authorization": f"Bearer {token}"}
    with caplog.at_level(logging.INFO), _uvicorn_thread(build_app(settings)) as port:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, headers=auth, timeout=10) as http:
            r = http.get("/fhir/Patient/p1")
            assert r.status_code == 500 and r.headers["connection"] == "close"
            # The server goes on serving (a new connection), and says why on 4xx as usual.
            assert http.get("/fhir/Patient/p1/_history/x").status_code == 404
            assert http.get("/healthz").status_code == 200
    assert SECRET not in caplog.text
    assert "Traceback" not in caplog.text and "Exception in ASGI" not in caplog.text


def test_405_answers_carry_allow(client: TestClient, headers: dict[str, str]) -> None:
    r = client.patch("/fhir/Patient", headers=headers)
    _outcome(r, 405)
    allowed = {m.strip() for m in r.headers["allow"].split(",")}
    assert {"GET", "POST", "PUT"} <= allowed and "PATCH" not in allowed
    r = client.put("/ops/backlog", headers=headers)
    _outcome(r, 405)
    assert r.headers["allow"] == "GET"
    r = client.get("/fhir", headers=headers)
    _outcome(r, 405)
    assert r.headers["allow"] == "POST"


# --- A body that stops arriving -------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_body_that_stops_arriving_times_out(settings: Settings, token: str) -> None:
    """`fhir-alerts serve` (a real uvicorn process) with ALERTS_BODY_TIMEOUT_SECONDS=1: a
    client that sends its headers and half the body gets 408 and the connection is closed."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTS_")}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "ALERTS_DATA_DIR": str(settings.data_dir),
            "ALERTS_JWT_SECRET": settings.signing_secret(),
            "ALERTS_BODY_TIMEOUT_SECONDS": "1",
        }
    )
    if settings.database_url:
        env["ALERTS_DATABASE_URL"] = settings.database_url
    script = Path(sys.executable).with_name("fhir-alerts")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "service.cli"]
    proc = subprocess.Popen(
        [*command, "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()[0]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        body = b'{"resourceType": "Patient", "gender": "female"}'
        head = (
            f"POST /fhir/Patient HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/fhir+json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            started = time.monotonic()
            conn.sendall(head + body[:20])
            received = b""
            while chunk := conn.recv(65536):  # until the server closes the connection
                received += chunk
            elapsed = time.monotonic() - started
        assert received.startswith(b"HTTP/1.1 408"), received[:200]
        assert b'"resourceType":"OperationOutcome"' in received
        assert 0.9 < elapsed < 8, elapsed
        # Nothing was stored; the server is still there.
        auth = {"Authorization": f"Bearer {token}"}
        r = httpx.get(f"http://127.0.0.1:{port}/fhir/Patient", headers=auth, timeout=10)
        assert r.status_code == 200 and not r.json().get("entry"), r.text
    finally:
        proc.terminate()
        try:
            output = proc.communicate(timeout=20)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
            output = proc.communicate()[0]
    assert "Traceback" not in output, output
