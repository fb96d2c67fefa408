"""What a Subscription asks for, read from its JSON: where to post, what to put in the body,
which extra headers to send, and the client's signing secret.

Conventions (all R4; the payload-content extension is the Subscriptions R4 Backport IG's):

- `channel.type` must be `rest-hook`; `channel.endpoint` an absolute http(s) URL.
- `channel.payload` absent = `empty`: the POST has no body at all. Present, it must be
  `application/fhir+json` (or `application/json`) and the content level is the extension
  `http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content`
  on the payload element (`channel._payload.extension[]`, `valueCode` empty | id-only |
  full-resource). Without the extension a payload means `full-resource` (plain R4: a payload
  mime type means the resource is sent).
- `channel.header[]`: "Name: value" strings sent as HTTP headers (e.g. the receiver's own
  Authorization); they cannot replace the headers the service sets itself.
- The HMAC secret: `channel.extension[]` with url `SECRET_URL` and a `valueString` of 16-512
  characters. It is optional (a plain R4 Subscription has none: its notifications go unsigned
  and the receiver authenticates them by the `channel.header` values it chose); when given it
  is write-only (stripped before the resource is stored, so read, search and history never
  show it), kept when an update omits it, and replaced when an update carries a new one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from service.errors import Issue

PAYLOAD_CONTENT_URL = (
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content"
)
SECRET_URL = "https://fhir-alerts.example.org/fhir/StructureDefinition/subscription-secret"
SECRET_MIN, SECRET_MAX = 16, 512

CHANNEL_TYPES = frozenset({"rest-hook", "websocket", "email", "sms", "message"})  # R4 binding
PAYLOAD_TYPES = frozenset({"application/fhir+json", "application/json"})
# Headers the service sets on every notification; a channel.header may not replace them.
RESERVED_HEADERS = frozenset(
    {"content-type", "content-length", "host", "transfer-encoding", "connection", "user-agent"}
)
RESERVED_PREFIX = "x-fhir-alerts-"
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class Content(StrEnum):
    EMPTY = "empty"
    ID_ONLY = "id-only"
    FULL_RESOURCE = "full-resource"


@dataclass(frozen=True, slots=True)
class Channel:
    endpoint: str
    content: Content
    mime: str | None  # None for empty notifications (no body, no Content-Type)
    headers: tuple[tuple[str, str], ...]


def _issue(code: str, path: str, message: str) -> Issue:
    return Issue("error", code, f"{path}: {message}", (path,))


def _extensions(element: Any) -> list[Mapping[str, Any]]:
    if not isinstance(element, Mapping):
        return []
    return [e for e in element.get("extension") or [] if isinstance(e, Mapping)]


def _content(channel: Mapping[str, Any], issues: list[Issue]) -> tuple[Content, str | None]:
    path = "Subscription.channel.payload"
    payload = channel.get("payload")
    codes = [
        e.get("valueCode")
        for e in _extensions(channel.get("_payload"))
        if e.get("url") == PAYLOAD_CONTENT_URL
    ]
    if len(codes) > 1:
        issues.append(_issue("invalid", path, "at most one payload-content extension"))
        return Content.EMPTY, None
    code = codes[0] if codes else None
    if code is not None and code not in {c.value for c in Content}:
        issues.append(
            _issue("code-invalid", path, "payload-content must be empty, id-only or full-resource")
        )
        return Content.EMPTY, None
    if payload is None:
        if code not in (None, Content.EMPTY.value):
            issues.append(
                _issue("required", path, f"a mime type is needed for '{code}' notifications")
            )
        return Content.EMPTY, None
    mime = payload.split(";", 1)[0].strip().lower() if isinstance(payload, str) else ""
    if mime not in PAYLOAD_TYPES:
        issues.append(
            _issue("not-supported", path, "only application/fhir+json payloads are supported")
        )
        return Content.EMPTY, None
    content = Content(code) if code is not None else Content.FULL_RESOURCE
    return content, (mime if content is not Content.EMPTY else None)


def _endpoint(channel: Mapping[str, Any], issues: list[Issue]) -> str:
    path = "Subscription.channel.endpoint"
    endpoint = channel.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        issues.append(_issue("required", path, "a rest-hook needs an endpoint"))
        return ""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        issues.append(_issue("value", path, "must be an absolute http or https URL"))
    return endpoint


def _headers(channel: Mapping[str, Any], issues: list[Issue]) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for i, raw in enumerate(channel.get("header") or []):
        path = f"Subscription.channel.header[{i}]"
        name, sep, value = raw.partition(":") if isinstance(raw, str) else ("", "", "")
        name, value = name.strip(), value.strip()
        if not sep or not _HEADER_NAME.match(name) or "\n" in value or "\r" in value:
            issues.append(_issue("value", path, "must be 'Name: value'"))
            continue
        lowered = name.lower()
        if lowered in RESERVED_HEADERS or lowered.startswith(RESERVED_PREFIX):
            issues.append(_issue("value", path, f"'{name}' is set by the service"))
            continue
        out.append((name, value))
    return tuple(out)


def parse_channel(subscription: Mapping[str, Any]) -> tuple[Channel | None, list[Issue]]:
    """The channel, or None with the issues that make it unusable."""
    issues: list[Issue] = []
    channel = subscription.get("channel")
    if not isinstance(channel, Mapping):
        return None, [_issue("required", "Subscription.channel", "is required")]
    ctype = channel.get("type")
    if ctype is None:
        issues.append(_issue("required", "Subscription.channel.type", "is required"))
    elif ctype not in CHANNEL_TYPES:
        issues.append(
            _issue("code-invalid", "Subscription.channel.type", "code is not in the value set")
        )
    elif ctype != "rest-hook":
        issues.append(
            _issue("not-supported", "Subscription.channel.type", "only rest-hook is supported")
        )
    endpoint = _endpoint(channel, issues)
    content, mime = _content(channel, issues)
    headers = _headers(channel, issues)
    if issues:
        return None, issues
    return Channel(endpoint, content, mime, headers), []


def take_secret(subscription: Mapping[str, Any]) -> tuple[dict[str, Any], str | None, list[Issue]]:
    """(the Subscription without its secret extension, the secret or None, issues)."""
    path = "Subscription.channel.extension"
    body = dict(subscription)
    channel = body.get("channel")
    if not isinstance(channel, Mapping):
        return body, None, []
    kept, secrets = [], []
    for ext in channel.get("extension") or []:
        if isinstance(ext, Mapping) and ext.get("url") == SECRET_URL:
            secrets.append(ext.get("valueString"))
        else:
            kept.append(ext)
    if not secrets:
        return body, None, []
    new_channel = {k: v for k, v in channel.items() if k != "extension"}
    if kept:
        new_channel["extension"] = kept
    body["channel"] = new_channel
    if len(secrets) > 1:
        return body, None, [_issue("invalid", path, "at most one subscription-secret")]
    secret = secrets[0]
    if not isinstance(secret, str) or not SECRET_MIN <= len(secret) <= SECRET_MAX:
        return (
            body,
            None,
            [
                _issue(
                    "value",
                    path,
                    f"subscription-secret valueString must be {SECRET_MIN}-{SECRET_MAX} characters",
                )
            ],
        )
    return body, secret, []
