"""Payload shaping (empty / id-only / full-resource), the HMAC signature and the back-off."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import orjson
import pytest

from service.subscriptions.channel import Content
from service.subscriptions.payload import Change, notification_body
from service.subscriptions.settings import DeliverySettings, retry_delay
from service.subscriptions.signing import sign, verify
from tests.conftest import R4Validator

FLAG: dict[str, Any] = {
    "resourceType": "Flag",
    "id": "f1",
    "meta": {"versionId": "3", "lastUpdated": "2026-01-02T03:04:05.000Z"},
    "status": "inactive",
    "code": {"text": "Possible bone metastasis"},
    "subject": {"reference": "Patient/pat-123"},
}
CHANGE = Change(
    resource_type="Flag",
    resource_id="f1",
    version_id=3,
    last_updated="2026-01-02T03:04:05.000Z",
    created=False,
    content=orjson.dumps(FLAG),
)


def _body(content: Content, base: str | None = None) -> bytes:
    return notification_body(
        content,
        uid="6f1c2a4e-0000-4000-8000-000000000001",
        timestamp="2026-01-02T03:04:05.000Z",
        change=CHANGE,
        fhir_base=base,
    )


def test_empty_has_no_body_at_all() -> None:
    body = _body(Content.EMPTY, base="https://alerts.example/fhir")
    assert body == b""
    assert b"Patient" not in body and b"pat-123" not in body and b"f1" not in body


def test_id_only_names_the_version_and_nothing_else() -> None:
    body = _body(Content.ID_ONLY, base="https://alerts.example/fhir")
    bundle = orjson.loads(body)
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "history"
    assert bundle["id"] == "6f1c2a4e-0000-4000-8000-000000000001"
    [entry] = bundle["entry"]
    assert "resource" not in entry
    assert entry["fullUrl"] == "https://alerts.example/fhir/Flag/f1"
    assert entry["request"] == {"method": "PUT", "url": "Flag/f1"}
    assert entry["response"]["location"] == "Flag/f1/_history/3"
    assert entry["response"]["etag"] == 'W/"3"'
    assert b"Patient" not in body and b"pat-123" not in body


def test_full_resource_carries_the_stored_version() -> None:
    bundle = orjson.loads(_body(Content.FULL_RESOURCE))
    [entry] = bundle["entry"]
    assert entry["resource"] == FLAG
    assert "fullUrl" not in entry  # no public base configured


def test_same_notification_same_bytes() -> None:
    assert _body(Content.FULL_RESOURCE) == _body(Content.FULL_RESOURCE)


@pytest.mark.parametrize("content", [Content.ID_ONLY, Content.FULL_RESOURCE])
def test_notification_bundles_are_valid_r4(content: Content, r4_validate: R4Validator) -> None:
    r4_validate([orjson.loads(_body(content, base="https://alerts.example/fhir"))])


def test_signature_is_hmac_sha256_of_the_body() -> None:
    # RFC-style known vector (HMAC-SHA256 "key" / the quick brown fox)
    body = b"The quick brown fox jumps over the lazy dog"
    expected = "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    assert sign("key", body) == f"sha256={expected}"
    assert verify("key", body, f"sha256={expected}")
    assert not verify("key", body + b" ", f"sha256={expected}")
    assert not verify("other", body, f"sha256={expected}")
    assert not verify("key", body, expected)  # prefix required
    assert not verify("key", body, None)
    assert sign("s" * 20, b"") == "sha256=" + hmac.new(b"s" * 20, b"", hashlib.sha256).hexdigest()


def test_backoff_doubles_from_30s_up_to_6h_over_12_attempts() -> None:
    s = DeliverySettings()
    delays = [s.retry_delay(n) for n in range(1, s.max_attempts)]
    assert delays[:4] == [30, 60, 120, 240]
    assert max(delays) == 6 * 3600 and delays[-1] == 6 * 3600
    total_hours = sum(delays) / 3600
    assert 10 < total_hours < 24  # tries for hours, gives up within a day
    assert retry_delay(0, base=30, cap=60) == 0
    assert retry_delay(500, base=30, cap=60) == 60


def test_backoff_is_configurable_through_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTS_DELIVERY_BASE_DELAY_SECONDS", "0.1")
    monkeypatch.setenv("ALERTS_DELIVERY_MAX_DELAY_SECONDS", "0.5")
    monkeypatch.setenv("ALERTS_DELIVERY_MAX_ATTEMPTS", "3")
    s = DeliverySettings()
    assert [s.retry_delay(n) for n in (1, 2, 3, 4)] == [0.1, 0.2, 0.4, 0.5]
    assert s.max_attempts == 3
