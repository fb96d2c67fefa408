"""The CapabilityStatement. Derived, so they follow the code: the interactions (one per mounted
route of `fhir_routes`), the `$evaluate` operation (only when its route is mounted and the app
was given an evaluator), and the search parameters, sort keys and includes (from the search
registry the parser uses). Declared here by hand, and kept true by tests only: versioning,
conditional read, security, formats and the documentation texts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.routing import BaseRoute

from contract.topics import TOPIC_CODES, topic_url
from service import __version__
from service.api import subscription_ops
from service.api.patch import JSON_PATCH, MERGE_PATCH
from service.fhir.registry import (
    READ_ONLY_TYPES,
    SEARCH_PARAMS,
    SORTABLE_KINDS,
    includes_from,
    revincludes_into,
)
from service.subscriptions.topic_subscription import PROFILE_URL, TOPIC_CANONICAL_URL

# Type-level interactions, by the route that serves each for every registered type.
_TYPE_ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/fhir/{rtype}/{rid}"): "read",
    ("GET", "/fhir/{rtype}/{rid}/_history/{vid}"): "vread",
    ("PUT", "/fhir/{rtype}/{rid}"): "update",
    ("PATCH", "/fhir/{rtype}/{rid}"): "patch",
    ("DELETE", "/fhir/{rtype}/{rid}"): "delete",
    ("GET", "/fhir/{rtype}/{rid}/_history"): "history-instance",
    ("POST", "/fhir/{rtype}"): "create",
    ("GET", "/fhir/{rtype}"): "search-type",
}
_READ_INTERACTIONS = frozenset({"read", "vread", "history-instance", "search-type"})
_CONDITIONAL_UPDATE = ("PUT", "/fhir/{rtype}")
_CONDITIONAL_DELETE = ("DELETE", "/fhir/{rtype}")
_SYSTEM_BUNDLE = ("POST", "/fhir")
_EVALUATE = ("POST", "/fhir/$evaluate")
# Search parameters every type takes (listed once, at rest level).
_COMMON = ("_id", "_lastUpdated")
_BACKPORT_OPERATIONS = "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition"
_TOPIC_OPERATIONS = (
    (
        "status",
        "/fhir/Subscription/{subscription_id}/$status",
        "backport-subscription-status",
        "SubscriptionStatus of topic subscriptions, with events-since-subscription-start "
        "(also type-level: $status?id=...&status=...).",
    ),
    (
        "events",
        "/fhir/Subscription/{subscription_id}/$events",
        "backport-subscription-events",
        "Stored events of a topic subscription: eventsSinceNumber, eventsUntilNumber "
        "(inclusive), content.",
    ),
)
RESULT_PARAMETERS_DOC = (
    "Result parameters: _count, _offset, _total=none|estimate|accurate, "
    "_summary=true|text|data|count|false, _elements, _sort, _include, _revinclude."
)


def mounted(routes: Iterable[BaseRoute]) -> set[tuple[str, str]]:
    """(method, path) of every mounted route."""
    out: set[tuple[str, str]] = set()
    for route in routes:
        path = getattr(route, "path", None)
        for method in getattr(route, "methods", None) or ():
            if path is not None:
                out.add((method, path))
    return out


def _resource(rtype: str, have: set[tuple[str, str]]) -> dict[str, Any]:
    params = SEARCH_PARAMS[rtype]
    interactions = [code for key, code in _TYPE_ROUTES.items() if key in have]
    if rtype in READ_ONLY_TYPES:  # the server's own records (AuditEvent)
        interactions = [c for c in interactions if c in _READ_INTERACTIONS]
    sortable = [p.name for p in params if p.kind in SORTABLE_KINDS]
    entry: dict[str, Any] = {
        "type": rtype,
        "documentation": (
            f"_sort: {', '.join(sortable)} (prefix '-' for descending). {RESULT_PARAMETERS_DOC}"
        ),
        "interaction": [{"code": c} for c in interactions],
        "versioning": "versioned-update",
        "readHistory": "vread" in interactions,
        "updateCreate": "update" in interactions,
        "conditionalCreate": "create" in interactions,  # If-None-Exist, or criteria on the URL
        "conditionalRead": "not-supported",
        "conditionalUpdate": _CONDITIONAL_UPDATE in have and "update" in interactions,
        # A conditional delete deletes one match; several matches are a 412.
        "conditionalDelete": (
            "single"
            if _CONDITIONAL_DELETE in have and rtype not in READ_ONLY_TYPES
            else "not-supported"
        ),
    }
    includes = sorted(includes_from(rtype))
    revincludes = sorted(revincludes_into(rtype))
    if includes:
        entry["searchInclude"] = includes
    if revincludes:
        entry["searchRevInclude"] = revincludes
    entry["searchParam"] = [
        {"name": p.name, "type": p.fhir_type, "documentation": p.documentation}
        for p in params
        if p.name not in _COMMON
    ]
    return entry


def _topics(entry: dict[str, Any], have: set[tuple[str, str]]) -> None:
    """Topic-based subscriptions on the Subscription entry (Backport IG): each topic canonical
    (`capabilitystatement-subscriptiontopic-canonical`), the backport profile, and `$status` /
    `$events` when their routes are mounted."""
    entry["extension"] = [
        {"url": TOPIC_CANONICAL_URL, "valueCanonical": topic_url(code)} for code in TOPIC_CODES
    ]
    entry["supportedProfile"] = [PROFILE_URL]
    entry["documentation"] += (
        " Topic-based (Subscriptions R5 Backport IG): criteria = a topic canonical listed in "
        "this entry's extensions; backport-filter-criteria on patient and priority."
    )
    operations = [
        {"name": name, "definition": f"{_BACKPORT_OPERATIONS}/{definition}", "documentation": doc}
        for name, path, definition, doc in _TOPIC_OPERATIONS
        if ("GET", path) in have
    ]
    if operations:
        entry["operation"] = operations


def capability_statement(
    base_url: str, routes: Iterable[BaseRoute] | None = None, *, evaluate: bool = True
) -> dict[str, Any]:
    """`evaluate`: the app can answer `$evaluate` (an evaluator was composed in)."""
    if routes is None:
        from service.api import fhir_routes

        routes = fhir_routes.router.routes
    have = mounted(routes) | mounted(subscription_ops.router.routes)
    system = [{"code": "transaction"}, {"code": "batch"}] if _SYSTEM_BUNDLE in have else []
    patch_formats = [JSON_PATCH, MERGE_PATCH] if ("PATCH", "/fhir/{rtype}/{rid}") in have else []
    rest: dict[str, Any] = {
        "mode": "server",
        "documentation": (
            "Types not listed are skipped (not stored) inside batch/transaction Bundles. "
            "Merge patches are also accepted as application/json."
        ),
        "security": {
            "cors": False,
            "description": (
                "Bearer JWT with SMART-style scopes system/<Type|*>.<read|write|*> "
                "(v2 letters .cruds accepted); metadata and healthz are open. Included "
                "resources are only those types the token may read."
            ),
        },
        "resource": [_resource(rtype, have) for rtype in SEARCH_PARAMS],
    }
    for entry in rest["resource"]:
        if entry["type"] == "Subscription":
            _topics(entry, have)
    if system:
        rest["interaction"] = system
    rest["searchParam"] = [
        {"name": "_id", "type": "token"},
        {"name": "_lastUpdated", "type": "date"},
        {"name": "_count", "type": "number"},
        {"name": "_offset", "type": "number"},
    ]
    if evaluate and _EVALUATE in have:
        rest["operation"] = [
            {
                "name": "evaluate",
                "definition": "https://fhir-alerts.example.org/fhir/OperationDefinition/evaluate",
                "documentation": (
                    "Dry run: POST a Bundle (optional asOf) and get back the Flags and "
                    "CommunicationRequests it would produce; nothing is stored."
                ),
            }
        ]
    statement: dict[str, Any] = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-29",
        "publisher": "fhir-alerts",
        "kind": "instance",
        "software": {"name": "fhir-alerts", "version": __version__},
        "implementation": {
            "description": "Bone-metastasis surveillance for breast-cancer survivors",
            "url": base_url,
        },
        "fhirVersion": "4.0.1",
        "format": ["json"],
    }
    if patch_formats:
        statement["patchFormat"] = patch_formats
    statement["rest"] = [rest]
    return statement
