"""Parse and validate incoming FHIR R4 JSON.

`fhir.resources` R4B models check structure and datatypes (the types we serve are identical in
R4 and R4B), but not required code bindings: an Observation with status "bogus" passes them.
The bindings the service depends on are checked here. Issues name the element path and the
problem, never the offending value, so no patient data reaches an error body or a log.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

import orjson
from fhir.resources.R4B import get_fhir_model_class
from pydantic import BaseModel, ValidationError

from service.errors import FHIRError, Issue, bad_request
from service.fhir.wellformed import MAX_DEPTH, field_kinds, json_issues, nesting_depth_exceeds

# Required bindings (FHIR R4) of elements the service reads or filters on.
_REQUIRED_CODES: dict[str, dict[str, frozenset[str]]] = {
    "Observation": {
        "status": frozenset(
            {
                "registered",
                "preliminary",
                "final",
                "amended",
                "corrected",
                "cancelled",
                "entered-in-error",
                "unknown",
            }
        ),
    },
    "Flag": {"status": frozenset({"active", "inactive", "entered-in-error"})},
    "CommunicationRequest": {
        "status": frozenset(
            {"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"}
        ),
        "priority": frozenset({"routine", "urgent", "asap", "stat"}),
    },
    "Patient": {"gender": frozenset({"male", "female", "other", "unknown"})},
    "Subscription": {"status": frozenset({"requested", "active", "error", "off"})},
}

_CONDITION_CLINICAL = (
    "http://terminology.hl7.org/CodeSystem/condition-clinical",
    frozenset({"active", "recurrence", "relapse", "inactive", "remission", "resolved"}),
)
_CONDITION_VERIFICATION = (
    "http://terminology.hl7.org/CodeSystem/condition-ver-status",
    frozenset(
        {"unconfirmed", "provisional", "differential", "confirmed", "refuted", "entered-in-error"}
    ),
)
_COMPARATORS = frozenset({"<", "<=", ">=", ">"})

_PYDANTIC_TO_FHIR = {
    "missing": "required",
    "extra_forbidden": "structure",
    "model_type": "structure",
    "list_type": "structure",
    "dict_type": "structure",
    "json_invalid": "structure",
}

# A whole request body (a Bundle adds a few levels around each resource's MAX_DEPTH).
MAX_BODY_DEPTH = 2 * MAX_DEPTH + 8


def parse_json(body: bytes, *, max_bundle_entries: int | None = None) -> Any:
    """400 for anything that is not JSON: the request cannot be read at all.

    `max_bundle_entries`: a Bundle with more entries is refused (413 `too-costly`) right
    after parsing, before anything walks, validates or plans its entries."""
    if not body:
        raise bad_request("The request body is empty")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"The body is not valid JSON (at byte {exc.pos})") from None
    if max_bundle_entries is not None:
        require_bundle_size(value, max_bundle_entries)
    if nesting_depth_exceeds(value, MAX_BODY_DEPTH):
        # Code that walks the body (reference rewriting, the models) recurses per level.
        raise FHIRError.of(
            400, "too-costly", f"The body nests more than {MAX_BODY_DEPTH} levels deep"
        )
    return value


def require_bundle_size(value: Any, limit: int) -> None:
    """413 for a Bundle of more than `limit` entries (ALERTS_MAX_BUNDLE_ENTRIES)."""
    if not isinstance(value, dict) or value.get("resourceType") != "Bundle":
        return
    entries = value.get("entry")
    if isinstance(entries, list) and len(entries) > limit:
        raise FHIRError.of(
            413,
            "too-costly",
            f"The Bundle has {len(entries)} entries; this server takes at most {limit} "
            "in one Bundle (ALERTS_MAX_BUNDLE_ENTRIES): split it",
            ("Bundle.entry",),
        )


@cache
def _model(resource_type: str) -> type[BaseModel] | None:
    try:
        return get_fhir_model_class(resource_type)
    except (KeyError, ValueError):
        return None


@cache
def warm(resource_types: frozenset[str]) -> int:
    """Load the validation models of these types and of every element inside them now, once
    per process; returns how many models that is. Otherwise the first resource of a type pays
    for importing and building its model classes in the middle of a request (measured: 70 ms
    for the first Condition, 18 ms for the first Patient), and under load that stall becomes
    the backlog every later request waits behind."""
    seen: set[type[BaseModel]] = set()
    todo = [m for m in map(_model, sorted(resource_types)) if m is not None]
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        todo.extend(k.model for k in field_kinds(model).values() if k.model is not None)
    return len(seen)


def known_resource_type(resource_type: str) -> bool:
    return _model(resource_type) is not None


def _loc_to_path(resource_type: str, loc: tuple[int | str, ...]) -> str:
    path = resource_type
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.startswith("function-after") or part.startswith("function-"):
            continue
        else:
            path += f".{part}"
    return path


def _structure_issues(resource_type: str, resource: Mapping[str, Any]) -> list[Issue]:
    model = _model(resource_type)
    if model is None:
        return [Issue("error", "not-supported", f"Unknown resource type '{resource_type}'")]
    # FHIR JSON rules first: wrong JSON types, nulls, empty arrays, control characters, ids,
    # impossible instants and runaway nesting; the model would coerce, accept or overflow.
    json_problems = json_issues(resource_type, resource, _model)
    if json_problems:
        return json_problems
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        issues = []
        for err in exc.errors(include_input=False, include_url=False):
            code = _PYDANTIC_TO_FHIR.get(err["type"], "value")
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "json_invalid":  # a string where an object belongs
                msg = "expected an object, found a string"
            path = _loc_to_path(resource_type, tuple(err["loc"]))
            issues.append(Issue("error", code, f"{path}: {msg}", (path,)))
        return issues
    except (ValueError, TypeError, RecursionError) as exc:  # some shapes escape pydantic
        return [Issue("error", "structure", f"{resource_type}: {type(exc).__name__}", ())]
    return []


def _coding_codes(concept: Any, system: str) -> list[str]:
    codings = concept.get("coding") if isinstance(concept, Mapping) else None
    if not isinstance(codings, list):  # a wrong shape is a structure issue, reported apart
        return []
    return [
        c.get("code", "") for c in codings if isinstance(c, Mapping) and c.get("system") == system
    ]


def _binding_issues(resource_type: str, resource: Mapping[str, Any]) -> list[Issue]:
    issues: list[Issue] = []
    for element, allowed in _REQUIRED_CODES.get(resource_type, {}).items():
        value = resource.get(element)
        # A value of the wrong JSON type is a structure issue, reported by _structure_issues.
        if isinstance(value, str) and value not in allowed:
            path = f"{resource_type}.{element}"
            issues.append(
                Issue(
                    "error",
                    "code-invalid",
                    f"{path}: code is not in the required value set ({', '.join(sorted(allowed))})",
                    (path,),
                )
            )
    if resource_type == "Condition":
        for element, (system, allowed) in (
            ("clinicalStatus", _CONDITION_CLINICAL),
            ("verificationStatus", _CONDITION_VERIFICATION),
        ):
            for code in _coding_codes(resource.get(element), system):
                if code not in allowed:
                    path = f"Condition.{element}"
                    issues.append(Issue("error", "code-invalid", f"{path}: unknown code", (path,)))
    if resource_type == "Observation":
        quantities = [("valueQuantity", resource.get("valueQuantity"))]
        components = resource.get("component")
        for i, comp in enumerate(components if isinstance(components, list) else []):
            if isinstance(comp, Mapping):
                quantities.append((f"component[{i}].valueQuantity", comp.get("valueQuantity")))
        for name, q in quantities:
            if isinstance(q, Mapping) and q.get("comparator") not in (None, *_COMPARATORS):
                path = f"Observation.{name}.comparator"
                issues.append(Issue("error", "code-invalid", f"{path}: unknown code", (path,)))
    return issues


def validate_resource(
    resource: Any, *, expected_type: str | None = None, where: str = ""
) -> tuple[str, list[Issue]]:
    """Return (resourceType, issues). An empty issue list means the resource may be stored."""
    prefix = f"{where}: " if where else ""
    if not isinstance(resource, Mapping):
        return "", [Issue("error", "structure", f"{prefix}a resource must be a JSON object")]
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        return "", [
            Issue("error", "required", f"{prefix}resourceType is missing", ("resourceType",))
        ]
    if expected_type and resource_type != expected_type:
        return resource_type, [
            Issue(
                "error",
                "invalid",
                f"{prefix}resourceType '{resource_type}' does not match the URL "
                f"('{expected_type}')",
                ("resourceType",),
            )
        ]
    issues = _structure_issues(resource_type, resource)
    issues += _binding_issues(resource_type, resource)
    if prefix:
        issues = [Issue(i.severity, i.code, prefix + i.diagnostics, i.expression) for i in issues]
    return resource_type, issues


# Stands in for an id the server has not assigned yet (any well-formed id validates alike).
_PLACEHOLDER_ID = "00000000-0000-4000-8000-000000000000"


def is_valid(
    resource: Any, *, expected_type: str | None = None, server_assigns_id: bool = False
) -> bool:
    """Whether `require_valid` would accept the resource as it will be stored. Routes and
    Bundles ask this before their write transaction opens, so the model validation (the
    costliest step of a write) never runs while the database write lock is held; a resource
    that fails is validated again where it always was, inside the interaction, so every
    refusal keeps its status, its issues and its place in the order of checks (rights first,
    then content). `server_assigns_id`: the id is the server's to give (a Bundle's POST
    entry, a conditional update without one), so the body's own id, if any, is not judged."""
    if server_assigns_id and isinstance(resource, Mapping):
        resource = {**resource, "id": _PLACEHOLDER_ID}
    return not validate_resource(resource, expected_type=expected_type)[1]


def require_valid(resource: Any, *, expected_type: str | None = None) -> str:
    resource_type, issues = validate_resource(resource, expected_type=expected_type)
    if issues:
        status = 400 if not resource_type else 422
        raise FHIRError(status, issues)
    return resource_type
