"""The README's "Where alerts go" examples, run as written: the plain R4 rest-hook Subscription
(its endpoint swapped for a loopback receiver; the example's own host is never contacted) and
the CDS Hooks `patient-view` request. The worklist example is run by tests/test_readme.py and
tests/api/web/test_worklist.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from service.config import Settings
from tests.api.cds_card_schema import check_response
from tests.api.subscriptions.receiver import Receiver, wait_until
from tests.api.test_cds_hooks import EC_KEY, SERVICE, _jwk, auth
from tests.builders import back_pain_story
from tests.conftest import wait_idle

README = Path(__file__).resolve().parents[2] / "README.md"


def example(name: str) -> dict[str, Any]:
    text = README.read_text()
    block = text.split(f"<!-- where:{name}:start -->", 1)[1].split(f"<!-- where:{name}:end -->")[0]
    match = re.search(r"```json\n(.*?)```", block, re.S)
    assert match, f"README example {name} is missing"
    return dict(orjson.loads(match.group(1)))


@pytest.fixture
def settings(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("ALERTS_SUBSCRIPTION_ALLOWED_HOSTS", "127.0.0.1")
    monkeypatch.setenv("ALERTS_DELIVERY_BASE_DELAY_SECONDS", "0.1")
    registry = {
        "clients": [
            {
                "client_id": "ehr-cds",
                "scope": "system/*.rs",
                "jwks": {"keys": [_jwk(EC_KEY, "ec-1", "ES384")]},
            }
        ]
    }
    path = tmp_path / "clients.json"
    path.write_bytes(orjson.dumps(registry))
    return settings.model_copy(update={"clients": path, "subscription_allowed_hosts": "127.0.0.1"})


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def test_readme_rest_hook_example(
    client: TestClient, headers: dict[str, str], receiver: Receiver
) -> None:
    body = example("rest-hook")
    assert body["channel"]["endpoint"] == "https://pager.example.org/fhir-alerts"
    body["channel"]["endpoint"] = receiver.url
    r = client.post("/fhir/Subscription", json=body, headers=headers)
    assert r.status_code == 201, r.text
    assert client.post("/fhir", json=back_pain_story("where-1"), headers=headers).is_success
    wait_idle(client, headers)
    wait_until(lambda: len(receiver.accepted()) >= 1, what="the notification")
    got = receiver.accepted()[0]
    assert got.headers["authorization"] == "Bearer pager-token-123"
    assert orjson.loads(got.body)["entry"][0]["resource"]["priority"] == "urgent"


def test_readme_cds_hooks_example(client: TestClient, headers: dict[str, str]) -> None:
    body = example("cds")
    pid = body["context"]["patientId"]
    assert client.post("/fhir", json=back_pain_story(pid), headers=headers).is_success
    wait_idle(client, headers)
    r = client.post(SERVICE, json=body, headers=auth())
    assert r.status_code == 200, r.text
    [card] = check_response(r.json()).cards
    assert card.summary.startswith("Urgent: ") and card.indicator == "warning"
