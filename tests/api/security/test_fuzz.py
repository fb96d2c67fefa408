"""Schemathesis against the app's own OpenAPI schema: no request gets a 5xx (issue 10).

In-process (ASGI) against the `client` fixture's app, so it runs on whichever store the suite
runs on (SQLite by default, PostgreSQL with ALERTS_TEST_SERVERS=1). Authenticated with a
`system/*.*` token, so it gets past auth to the parsers, validators and stores. Bounded and
derandomized: a fixed number of examples per operation, the same ones on every run.

The routes read their bodies themselves (FHIR JSON, JSON Patch), so the generated schema has no
request bodies; the test adds loose ones here, so the fuzzer sends resources, Bundles and patch
documents of every shape, and offers the served types as `{rtype}` next to arbitrary strings.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

import service.subscriptions  # noqa: F401 - registers the Subscription type
from service.fhir import registry

TYPES = sorted(registry.SERVED_TYPES)
FHIR_JSON = "application/fhir+json"

# Values that broke the service once (issue 10), mixed into every element the fuzzer fills.
TRICKY = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "2024-05-01T10:00:00+99:99",
    "2024-05-01T10:00:00Z",
    "2024-05",
    "final",
    "female",
    "Patient/p1",
    "a\u0000b",
    "",
    " ",
    "x" * 65,
]
_ANY_VALUE: dict[str, Any] = {
    "anyOf": [
        {"enum": TRICKY},
        {"type": "string", "maxLength": 40},
        {"type": "integer"},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "null"},
        {"type": "array", "maxItems": 3, "items": {"enum": [*TRICKY, None, [], {}]}},
        {
            "type": "object",
            "maxProperties": 3,
            "properties": {
                "coding": {"type": "array", "maxItems": 2},
                "reference": {"enum": TRICKY},
                "value": {},
                "start": {"enum": TRICKY},
            },
        },
    ]
}
# The elements the service indexes, validates or judges, per type.
_ELEMENTS = {
    "Patient": ["gender", "name", "identifier", "birthDate", "extension"],
    "Observation": [
        "status",
        "code",
        "subject",
        "effectiveDateTime",
        "effectivePeriod",
        "issued",
        "valueQuantity",
        "component",
        "category",
    ],
    "Condition": ["clinicalStatus", "verificationStatus", "code", "subject", "onsetDateTime"],
    "Flag": ["status", "code", "subject", "period"],
    "CommunicationRequest": ["status", "priority", "subject", "authoredOn", "payload"],
    "Subscription": ["status", "criteria", "channel", "reason"],
}


def _resource(rtype: str | None) -> dict[str, Any]:
    """A body for `rtype` (None: any type, or none at all), each element of any JSON type."""
    names = (
        sorted({n for ns in _ELEMENTS.values() for n in ns})
        if rtype is None
        else _ELEMENTS.get(rtype, [])
    )
    kind = (
        {"anyOf": [{"enum": [*TYPES, "Bundle"]}, {"type": "string"}]}
        if rtype is None
        else {"const": rtype}
    )
    return {
        "type": "object",
        "required": ["resourceType"],
        "properties": {
            "resourceType": kind,
            "id": {"anyOf": [{"enum": ["p1", "x" * 65]}, {"type": "string", "maxLength": 70}]},
            **{name: _ANY_VALUE for name in names},
        },
    }


_BUNDLE: dict[str, Any] = {
    "type": "object",
    "required": ["resourceType", "type"],
    "properties": {
        "resourceType": {"const": "Bundle"},
        "type": {"anyOf": [{"enum": ["transaction", "batch", "collection"]}, _ANY_VALUE]},
        "entry": {
            "type": "array",
            "maxItems": 3,
            "items": {
                "type": "object",
                "properties": {
                    "fullUrl": {"enum": ["urn:uuid:7f0c7a4e-0000-4000-8000-000000000001", *TRICKY]},
                    "resource": _resource(None),
                    "request": {
                        "type": "object",
                        "properties": {
                            "method": {"enum": ["GET", "POST", "PUT", "DELETE", "PATCH"]},
                            "url": {"anyOf": [{"enum": [*TYPES, "Patient/p1"]}, _ANY_VALUE]},
                            "ifNoneExist": _ANY_VALUE,
                        },
                    },
                },
            },
        },
    },
}

_PATCH: dict[str, Any] = {
    "type": "array",
    "maxItems": 3,
    "items": {
        "type": "object",
        "properties": {
            "op": {"enum": ["add", "remove", "replace", "move", "copy", "test"]},
            "path": {"anyOf": [{"enum": ["/status", "/name/0", "/-", "/id"]}, {"type": "string"}]},
            "from": {"type": "string", "maxLength": 30},
            "value": _ANY_VALUE,
        },
    },
}


def _body(schema: dict[str, Any], media: str = FHIR_JSON) -> dict[str, Any]:
    return {"required": True, "content": {media: {"schema": schema}}}


def _with_bodies(raw: dict[str, Any]) -> dict[str, Any]:
    """The app's schema plus request bodies, and create/update/patch per served type (where
    a body's resourceType can match the URL)."""
    spec = copy.deepcopy(raw)
    paths = spec["paths"]
    path_param = {"in": "path", "required": True, "schema": {"type": "string"}}
    for rtype in TYPES:
        item = paths.setdefault(f"/fhir/{rtype}", {})
        item["post"] = {"operationId": f"create_{rtype}", "requestBody": _body(_resource(rtype))}
        instance = paths.setdefault(f"/fhir/{rtype}/{{rid}}", {})
        rid = {**path_param, "name": "rid", "schema": {"enum": ["p1", "p2", "x" * 65]}}
        instance["put"] = {
            "operationId": f"update_{rtype}",
            "parameters": [rid],
            "requestBody": _body(_resource(rtype)),
        }
        instance["patch"] = {
            "operationId": f"patch_{rtype}",
            "parameters": [rid],
            "requestBody": _body(_PATCH, "application/json-patch+json"),
        }
    for path, item in paths.items():
        for method, operation in item.items():
            for param in operation.get("parameters", []):
                if param.get("in") == "path" and param["name"] == "rtype":
                    param["schema"] = {"anyOf": [{"enum": TYPES}, {"type": "string"}]}
            if "requestBody" in operation or path.startswith(("/auth", "/ops")):
                continue
            if path in ("/fhir", "/fhir/", "/fhir/$evaluate"):
                operation["requestBody"] = _body(_BUNDLE)
            elif method == "patch":
                operation["requestBody"] = _body(_PATCH, "application/json-patch+json")
            elif method in ("post", "put") and not path.endswith("/_search"):
                operation["requestBody"] = _body(_resource(None))
    return spec


# Examples per operation and generation mode: ~40 operations x 2 modes x this many requests
# (about 30 s on two idle cores).
MAX_EXAMPLES = 20


# Over 10 s on its own: `slow`, so a local run skips it and CI (ALERTS_TEST_SLOW=1) runs it.
@pytest.mark.slow
def test_no_request_gets_a_server_error(client: TestClient, headers: dict[str, str]) -> None:
    # Driven through hypothesis directly: schemathesis' pytest plugin (`parametrize`) does not
    # run on this pytest. Every operation is fuzzed; all server errors are reported together.
    schema = schemathesis.openapi.from_dict(_with_bodies(client.app.openapi()))  # type: ignore[attr-defined]
    schema.app = client.app  # in-process, like schemathesis.openapi.from_asgi
    auth = {"Authorization": headers["Authorization"]}
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 35, [op.label for op in operations]
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
                phases=[Phase.explicit, Phase.generate],
            )
            def fuzz(case: Any) -> None:
                case.call_and_validate(headers=auth, checks=[not_a_server_error])

            try:
                fuzz()
            except Unsatisfiable:
                continue  # nothing to negate (no parameters, or only free-form strings)
            except Exception as exc:  # one line per failing operation; hypothesis shrank it
                failures.append(f"{operation.label} ({mode}): {str(exc)[:2000]}")
    assert not failures, "\n\n".join(failures)
