"""The CapabilityStatement, generated from the registry so it cannot claim more (or less)
than the routes do."""

from __future__ import annotations

from typing import Any

from service import __version__
from service.fhir.registry import SEARCH_PARAMS

_INTERACTIONS = [
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "create",
    "search-type",
]


def capability_statement(base_url: str) -> dict[str, Any]:
    resources = []
    for rtype, params in SEARCH_PARAMS.items():
        resources.append(
            {
                "type": rtype,
                "interaction": [{"code": c} for c in _INTERACTIONS],
                "versioning": "versioned",
                "readHistory": True,
                "updateCreate": True,
                "conditionalCreate": True,
                "conditionalUpdate": True,
                "conditionalDelete": "single",
                "searchParam": [
                    {"name": p.name, "type": p.fhir_type, "documentation": p.documentation}
                    for p in params
                    if p.name not in ("_id", "_lastUpdated")
                ],
            }
        )
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-21",
        "publisher": "fhir-alerts",
        "kind": "instance",
        "software": {"name": "fhir-alerts", "version": __version__},
        "implementation": {
            "description": "Bone-metastasis surveillance for breast-cancer survivors",
            "url": base_url,
        },
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "Types not listed are skipped (not stored) inside batch/transaction Bundles."
                ),
                "security": {
                    "cors": False,
                    "description": (
                        "Bearer JWT with SMART-style scopes system/<Type|*>.<read|write|*> "
                        "(v2 letters .cruds accepted); metadata and healthz are open."
                    ),
                },
                "resource": resources,
                "interaction": [{"code": "transaction"}, {"code": "batch"}],
                "searchParam": [
                    {"name": "_id", "type": "token"},
                    {"name": "_lastUpdated", "type": "date"},
                    {"name": "_count", "type": "number"},
                ],
                "operation": [
                    {
                        "name": "evaluate",
                        "definition": "https://fhir-alerts.example.org/fhir/OperationDefinition/evaluate",
                        "documentation": (
                            "Dry run: POST a Bundle (optional asOf) and get back the Flags and "
                            "CommunicationRequests it would produce; nothing is stored."
                        ),
                    }
                ],
            }
        ],
    }
