"""SMART Backend Services: a registered EHR signs a client assertion with its own key and
gets a short-lived, scope-limited token from `POST /auth/token`, without the service secret."""

from __future__ import annotations

import http.server
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.auth_clients import RegistryError, parse_registry
from service.auth_scopes import grant
from service.config import Settings
from service.store.db import session_factory, transaction
from service.store.models import ClientAssertion
from tests.builders import days_ago, lab

TOKEN_URL = "http://testserver/auth/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
REGISTERED = "system/Observation.cu system/Condition.cu"

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP384R1())
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(private: Any, kid: str, alg: str) -> dict[str, Any]:
    algo = jwt.algorithms.RSAAlgorithm if alg == "RS384" else jwt.algorithms.ECAlgorithm
    jwk: dict[str, Any] = algo.to_jwk(private.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "alg": alg, "use": "sig"}


JWKS = {"keys": [public_jwk(RSA_KEY, "rsa-1", "RS384"), public_jwk(EC_KEY, "ec-1", "ES384")]}


def assertion(
    key: Any = RSA_KEY,
    *,
    kid: str = "rsa-1",
    alg: str = "RS384",
    client_id: str = "ehr-1",
    **overrides: Any,
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": TOKEN_URL,
        "exp": now + 240,
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


def token_form(client_assertion: str, scope: str = REGISTERED, **extra: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion,
        "scope": scope,
        **extra,
    }


def write_clients(tmp_path: Path, clients: list[dict[str, Any]]) -> Path:
    path = tmp_path / "clients.json"
    path.write_bytes(orjson.dumps({"clients": clients}))
    return path


def build(settings: Settings) -> TestClient:
    from workers.embedded import build_app

    return TestClient(build_app(settings))


@pytest.fixture
def smart_settings(settings: Settings, tmp_path: Path) -> Settings:
    path = write_clients(
        tmp_path,
        [
            {"client_id": "ehr-1", "jwks": JWKS, "scope": REGISTERED},
            {"client_id": "reader", "jwks": JWKS, "scope": "system/*.rs"},
        ],
    )
    return settings.model_copy(update={"clients": path})


@pytest.fixture
def smart(smart_settings: Settings) -> Iterator[TestClient]:
    with build(smart_settings) as c:
        yield c


def fhir(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}


def test_signed_assertion_gets_a_working_scope_limited_token(smart: TestClient) -> None:
    asked = "system/Observation.cruds system/Patient.read system/Condition.c"
    r = smart.post("/auth/token", data=token_form(assertion(), scope=asked))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer"
    assert 0 < body["expires_in"] <= 300
    # Asked ∩ registered: Observation create/update, Condition create; nothing on Patient.
    assert body["scope"] == "system/Observation.cu system/Condition.c"
    assert r.headers["cache-control"] == "no-store"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == "ehr-1" and claims["aud"] == "http://testserver/fhir"

    h = fhir(body["access_token"])
    obs = lab("smart-obs-1", "smart-pt-1", "17861-6", 10.9, "mg/dL", days_ago(1))
    put = smart.put("/fhir/Observation/smart-obs-1", headers=h, content=orjson.dumps(obs))
    assert put.status_code == 201, put.text
    assert smart.get("/fhir/Observation/smart-obs-1", headers=h).status_code == 403
    assert smart.get("/fhir/Patient?_count=1", headers=h).status_code == 403
    pt = {"resourceType": "Patient", "id": "smart-pt-1"}
    assert (
        smart.put("/fhir/Patient/smart-pt-1", headers=h, content=orjson.dumps(pt)).status_code
        == 403
    )


def test_es384_assertion_is_accepted(smart: TestClient) -> None:
    signed = assertion(EC_KEY, kid="ec-1", alg="ES384", client_id="reader")
    r = smart.post("/auth/token", data=token_form(signed, scope="system/Flag.read"))
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "system/Flag.read"
    h = fhir(r.json()["access_token"])
    assert smart.get("/fhir/Flag?_count=1", headers=h).status_code == 200
    assert smart.get("/fhir/Observation?_count=1", headers=h).status_code == 403


def test_reused_jti_is_refused_by_every_api_process(
    smart: TestClient, smart_settings: Settings
) -> None:
    signed = assertion()
    assert smart.post("/auth/token", data=token_form(signed)).status_code == 200
    again = smart.post("/auth/token", data=token_form(signed))
    assert again.status_code == 401
    assert again.json()["error"] == "invalid_client"
    assert "jti" in again.json()["error_description"]
    # A second API process on the same database refuses the same assertion too.
    with build(smart_settings) as other:
        replay = other.post("/auth/token", data=token_form(signed))
        assert replay.status_code == 401 and replay.json()["error"] == "invalid_client"
        assert other.post("/auth/token", data=token_form(assertion())).status_code == 200


def test_expired_jti_records_are_deleted(smart: TestClient, smart_settings: Settings) -> None:
    factory = session_factory(smart_settings.resolved_database_url)
    past = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=10)
    with transaction(factory) as s:
        s.add(ClientAssertion(client_id="ehr-1", jti="old-one", expires_at=past))
    assert smart.post("/auth/token", data=token_form(assertion(jti="fresh"))).status_code == 200
    with transaction(factory) as s:
        jtis = set(s.scalars(select(ClientAssertion.jti)))
        assert jtis == {"fresh"}
        assert s.scalar(select(func.count()).select_from(ClientAssertion)) == 1


@pytest.mark.parametrize(
    ("signed", "why"),
    [
        (lambda: assertion(aud="http://elsewhere.example/auth/token"), "aud"),
        (lambda: assertion(exp=int(time.time()) + 3600), "exp"),
        (lambda: assertion(exp=int(time.time()) - 120), "expired"),
        (lambda: assertion(sub="someone-else"), "sub"),
        (lambda: assertion(client_id="not-registered"), "unknown"),
        (lambda: assertion(kid="no-such-kid"), "kid"),
        (lambda: assertion(OTHER_RSA_KEY), "signature"),
        (lambda: assertion(RSA_KEY, alg="RS256"), "algorithm"),
        (lambda: assertion(EC_KEY, kid="rsa-1", alg="ES384"), "key type"),
        (lambda: assertion("x" * 40, alg="HS256"), "hmac"),
        (
            lambda: jwt.encode(
                {
                    "iss": "ehr-1",
                    "sub": "ehr-1",
                    "aud": TOKEN_URL,
                    "exp": int(time.time()) + 60,
                    "jti": "n",
                },
                None,
                algorithm="none",
                headers={"kid": "rsa-1"},
            ),
            "none",
        ),
        (lambda: assertion(jti=None), "no jti"),
        (lambda: "not-a-jwt", "garbage"),
    ],
)
def test_bad_assertions_are_invalid_client(smart: TestClient, signed: Any, why: str) -> None:
    r = smart.post("/auth/token", data=token_form(signed()))
    assert r.status_code == 401, (why, r.text)
    assert r.json()["error"] == "invalid_client", why
    assert "access_token" not in r.json()


def test_oauth_request_errors(smart: TestClient) -> None:
    def err(r: Any) -> tuple[int, str]:
        return r.status_code, r.json()["error"]

    form = token_form(assertion())
    assert err(smart.post("/auth/token", data={**form, "grant_type": "password"})) == (
        400,
        "unsupported_grant_type",
    )
    assert err(smart.post("/auth/token", data={**form, "client_assertion_type": "x"})) == (
        401,
        "invalid_client",
    )
    assert err(smart.post("/auth/token", data={k: v for k, v in form.items() if k != "scope"})) == (
        400,
        "invalid_request",
    )
    assert err(smart.post("/auth/token", json=form)) == (400, "invalid_request")
    repeated = "grant_type=client_credentials&grant_type=client_credentials"
    r = smart.post(
        "/auth/token",
        content=repeated,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert err(r) == (400, "invalid_request")
    # Nothing asked is registered (Patient is not): no token.
    r = smart.post("/auth/token", data=token_form(assertion(), scope="system/Patient.read"))
    assert err(r) == (400, "invalid_scope")


def test_jwks_uri_is_fetched_from_the_client_and_cached(settings: Settings, tmp_path: Path) -> None:
    served: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.append(self.path)
            body = orjson.dumps(JWKS)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        uri = f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
        path = write_clients(
            tmp_path, [{"client_id": "ehr-1", "jwks_uri": uri, "scope": REGISTERED}]
        )
        with build(settings.model_copy(update={"clients": path})) as c:
            for _ in range(2):
                r = c.post("/auth/token", data=token_form(assertion()))
                assert r.status_code == 200, r.text
            r = c.post("/auth/token", data=token_form(assertion(EC_KEY, kid="ec-1", alg="ES384")))
            assert r.status_code == 200, r.text
        assert served == ["/jwks.json"]  # fetched once, then served from the cache
    finally:
        server.shutdown()
        server.server_close()


def test_unreachable_jwks_uri_is_invalid_client(settings: Settings, tmp_path: Path) -> None:
    # A loopback port nobody listens on (bound then closed): the fetch fails fast.
    probe = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    port = probe.server_address[1]
    probe.server_close()
    uri = f"http://127.0.0.1:{port}/jwks.json"
    path = write_clients(tmp_path, [{"client_id": "ehr-1", "jwks_uri": uri, "scope": REGISTERED}])
    with build(settings.model_copy(update={"clients": path})) as c:
        r = c.post("/auth/token", data=token_form(assertion()))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_public_base_url_sets_the_token_url_and_audience(smart_settings: Settings) -> None:
    s = smart_settings.model_copy(update={"public_base_url": "https://alerts.example.org/"})
    with build(s) as c:
        wrong = c.post("/auth/token", data=token_form(assertion()))  # aud = the request's URL
        assert wrong.status_code == 401
        ok = c.post(
            "/auth/token",
            data=token_form(assertion(aud="https://alerts.example.org/auth/token")),
        )
        assert ok.status_code == 200, ok.text
        claims = jwt.decode(ok.json()["access_token"], options={"verify_signature": False})
        assert claims["aud"] == "https://alerts.example.org/fhir"
        h = fhir(ok.json()["access_token"])
        obs = lab("smart-obs-2", "smart-pt-2", "17861-6", 10.9, "mg/dL", days_ago(1))
        put = c.put("/fhir/Observation/smart-obs-2", headers=h, content=orjson.dumps(obs))
        assert put.status_code == 201, put.text
        doc = c.get("/.well-known/smart-configuration").json()
        assert doc["token_endpoint"] == "https://alerts.example.org/auth/token"


def test_no_registry_means_no_client_gets_a_token(client: TestClient) -> None:
    r = client.post("/auth/token", data=token_form(assertion()))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_smart_configuration_advertises_backend_services(client: TestClient) -> None:
    r = client.get("/.well-known/smart-configuration")  # no token needed
    assert r.status_code == 200
    doc = r.json()
    assert doc["token_endpoint"] == TOKEN_URL
    assert doc["grant_types_supported"] == ["client_credentials"]
    assert doc["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert doc["token_endpoint_auth_signing_alg_values_supported"] == ["RS384", "ES384"]
    assert {"client-confidential-asymmetric", "permission-v2"} <= set(doc["capabilities"])
    assert "system/Observation.cud" in doc["scopes_supported"]
    # SMART clients discover it relative to the FHIR base.
    assert client.get("/fhir/.well-known/smart-configuration").json() == doc


def test_scope_grant_is_the_intersection() -> None:
    assert grant("system/Observation.write", REGISTERED) == ["system/Observation.cu"]
    assert grant("system/Observation.cu system/Condition.cu", REGISTERED) == [
        "system/Observation.cu",
        "system/Condition.cu",
    ]
    assert grant("system/*.*", REGISTERED) == ["system/Observation.cu", "system/Condition.cu"]
    assert grant("system/Flag.read", "system/*.rs") == ["system/Flag.read"]
    assert grant("system/*.cruds", "system/*.rs") == ["system/*.rs"]
    assert grant("system/Patient.read", REGISTERED) == []
    assert grant("user/Observation.cu patient/Observation.cu", REGISTERED) == []
    assert grant("system/Observation.cu?category=laboratory", REGISTERED) == []
    assert grant("system/Observation.xyz", REGISTERED) == []


def test_registry_is_checked_at_start(settings: Settings, tmp_path: Path) -> None:
    def bad(entry: dict[str, Any]) -> None:
        with pytest.raises(RegistryError):
            parse_registry({"clients": [entry]})

    bad({"client_id": "a", "scope": REGISTERED})  # no keys
    bad({"client_id": "a", "scope": REGISTERED, "jwks": JWKS, "jwks_uri": "https://x/j"})
    bad({"client_id": "a", "scope": REGISTERED, "jwks_uri": "http://ehr.example.org/jwks"})
    bad({"client_id": "a", "scope": REGISTERED, "jwks_uri": "ftp://ehr.example.org/jwks"})
    bad({"client_id": "", "scope": REGISTERED, "jwks": JWKS})
    bad({"client_id": "a", "scope": "", "jwks": JWKS})
    bad({"client_id": "a", "scope": REGISTERED, "jwks": {"keys": [{"kty": "nope"}]}})
    with pytest.raises(RegistryError):
        parse_registry({"clients": [{"client_id": "a", "scope": "s", "jwks": JWKS}] * 2})
    ok = parse_registry(
        {
            "clients": [
                {"client_id": "a", "scope": REGISTERED, "jwks_uri": "https://ehr.example.org/jwks"}
            ]
        }
    )
    assert ok["a"].jwks_uri == "https://ehr.example.org/jwks"

    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(RegistryError, match="not valid JSON"):
        build(settings.model_copy(update={"clients": broken}))


def test_unknown_kid_refetches_the_jwks_at_most_every_few_seconds() -> None:
    from service.auth_clients import REFETCH_AFTER_SECONDS, KeyResolver, RegisteredClient

    now = [1000.0]
    documents = [{"keys": [JWKS["keys"][0]]}, JWKS]  # the client then adds its new EC key
    fetched: list[str] = []

    def fetcher(uri: str, _timeout: float) -> Any:
        fetched.append(uri)
        return documents[min(len(fetched) - 1, 1)]

    resolver = KeyResolver(timeout=1, cache_seconds=300, fetcher=fetcher, clock=lambda: now[0])
    client = RegisteredClient("ehr-1", REGISTERED, jwks_uri="https://ehr.example.org/jwks")
    assert resolver.key(client, "rsa-1") is not None
    assert resolver.key(client, "ec-1") is None  # just fetched: no second fetch yet
    assert len(fetched) == 1
    now[0] += REFETCH_AFTER_SECONDS
    assert resolver.key(client, "ec-1") is not None  # rotated key found on a fresh fetch
    assert resolver.key(client, "rsa-1") is not None
    assert len(fetched) == 2
