"""Reading a Subscription's channel and secret: pure, no database."""

from __future__ import annotations

from typing import Any

import pytest

from service.subscriptions.channel import (
    PAYLOAD_CONTENT_URL,
    SECRET_URL,
    Content,
    parse_channel,
    take_secret,
)


def _sub(**channel: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"type": "rest-hook", "endpoint": "https://receiver.example/hook"}
    base.update(channel)
    return {
        "resourceType": "Subscription",
        "channel": {k: v for k, v in base.items() if v is not None},
    }


def _content(code: str) -> dict[str, Any]:
    return {"extension": [{"url": PAYLOAD_CONTENT_URL, "valueCode": code}]}


def test_no_payload_is_an_empty_notification() -> None:
    channel, issues = parse_channel(_sub())
    assert issues == [] and channel is not None
    assert channel.content is Content.EMPTY and channel.mime is None
    assert channel.endpoint == "https://receiver.example/hook"


def test_payload_without_content_extension_is_full_resource() -> None:
    channel, _ = parse_channel(_sub(payload="application/fhir+json"))
    assert channel is not None and channel.content is Content.FULL_RESOURCE
    assert channel.mime == "application/fhir+json"


@pytest.mark.parametrize("code", ["empty", "id-only", "full-resource"])
def test_backport_content_extension(code: str) -> None:
    channel, _ = parse_channel(_sub(payload="application/fhir+json", _payload=_content(code)))
    assert channel is not None and channel.content is Content(code)
    assert channel.mime == (None if code == "empty" else "application/fhir+json")


@pytest.mark.parametrize(
    ("channel", "code"),
    [
        ({"type": "websocket"}, "not-supported"),
        ({"type": "email"}, "not-supported"),
        ({"type": "carrier-pigeon"}, "code-invalid"),
        ({"type": None}, "required"),
        ({"endpoint": None}, "required"),
        ({"endpoint": "ftp://x/y"}, "value"),
        ({"endpoint": "/relative"}, "value"),
        ({"payload": "application/fhir+xml"}, "not-supported"),
        ({"payload": "application/fhir+json", "_payload": _content("everything")}, "code-invalid"),
        ({"_payload": _content("id-only")}, "required"),
        ({"header": ["no colon here"]}, "value"),
        ({"header": ["Content-Type: text/plain"]}, "value"),
        ({"header": ["X-FHIR-Alerts-Signature: sha256=forged"]}, "value"),
    ],
)
def test_unusable_channels(channel: dict[str, Any], code: str) -> None:
    parsed, issues = parse_channel(_sub(**channel))
    assert parsed is None
    assert [i.code for i in issues] == [code]
    assert all(i.diagnostics.startswith("Subscription.channel") for i in issues)


def test_channel_headers_are_kept() -> None:
    channel, _ = parse_channel(_sub(header=["Authorization: Bearer abc", "X-Team: onco"]))
    assert channel is not None
    assert channel.headers == (("Authorization", "Bearer abc"), ("X-Team", "onco"))


def test_secret_is_taken_out_of_the_resource() -> None:
    secret = "0123456789abcdef-secret"
    other = {"url": "https://example.org/other", "valueString": "kept"}
    sub = _sub(extension=[other, {"url": SECRET_URL, "valueString": secret}])
    body, taken, issues = take_secret(sub)
    assert taken == secret and issues == []
    assert body["channel"]["extension"] == [other]
    assert secret not in repr(body)
    # the caller's dict is not changed
    assert len(sub["channel"]["extension"]) == 2


def test_short_or_repeated_secrets_are_refused() -> None:
    _, taken, issues = take_secret(_sub(extension=[{"url": SECRET_URL, "valueString": "short"}]))
    assert taken is None and [i.code for i in issues] == ["value"]
    assert "short" not in issues[0].diagnostics  # never echoed
    two = [{"url": SECRET_URL, "valueString": "x" * 20}] * 2
    _, taken, issues = take_secret(_sub(extension=two))
    assert taken is None and [i.code for i in issues] == ["invalid"]


def test_no_secret_leaves_the_resource_alone() -> None:
    sub = _sub(payload="application/fhir+json")
    body, taken, issues = take_secret(sub)
    assert body == sub and taken is None and issues == []
