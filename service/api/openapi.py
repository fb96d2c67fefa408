"""The OpenAPI document, with one search path per served type (`GET /fhir/Patient` ...) whose
query parameters come from the search registry, the same table the parser and the
CapabilityStatement read. The generic `/fhir/{rtype}` route cannot describe per-type
parameters; without these paths a schema-based fuzzer never reaches them."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from service.config import Settings
from service.fhir.registry import (
    SEARCH_PARAMS,
    SORTABLE_KINDS,
    SearchParam,
    includes_from,
    revincludes_into,
)

_FHIR_JSON = "application/fhir+json"
# A FHIR date search value: optional prefix, then a date, dateTime or instant.
DATE_PATTERN = (
    r"^(eq|gt|ge|lt|le)?[0-9]{4}(-[0-9]{2}(-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?$"
)


def _param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _search_param(p: SearchParam) -> list[dict[str, Any]]:
    if p.kind in ("date", "last-updated"):
        schema: dict[str, Any] = {"type": "string", "pattern": DATE_PATTERN}
    else:
        schema = {"type": "string", "minLength": 1}
    out = [_param(p.name, schema, f"{p.fhir_type}: {p.documentation}")]
    if p.kind == "string":
        for modifier in ("exact", "contains"):
            out.append(_param(f"{p.name}:{modifier}", schema, f"{p.name}, :{modifier} match"))
    return out


def search_parameters(rtype: str, settings: Settings) -> list[dict[str, Any]]:
    """The OpenAPI query parameters of `GET /fhir/{rtype}`."""
    params = SEARCH_PARAMS[rtype]
    out = [q for p in params for q in _search_param(p)]
    sort_keys = [p.name for p in params if p.kind in SORTABLE_KINDS]
    out += [
        _param(
            "_count",
            {"type": "integer", "minimum": 0, "maximum": settings.max_page_size},
            "Page size",
        ),
        _param(
            "_offset",
            {"type": "integer", "minimum": 0, "maximum": settings.search_max_offset},
            "Matches to skip",
        ),
        _param("_total", {"type": "string", "enum": ["none", "estimate", "accurate"]}, "Total"),
        _param(
            "_summary",
            {"type": "string", "enum": ["true", "false", "text", "data", "count"]},
            "Summary form",
        ),
        _param("_elements", {"type": "string", "minLength": 1}, "Elements to return"),
        _param(
            "_sort",
            {"type": "string", "enum": [*sort_keys, *(f"-{k}" for k in sort_keys)]},
            "Sort key ('-' for descending)",
        ),
    ]
    includes = sorted(includes_from(rtype))
    if includes:
        out.append(_param("_include", {"type": "string", "enum": includes}, "Include targets"))
    revincludes = sorted(revincludes_into(rtype))
    if revincludes:
        out.append(
            _param("_revinclude", {"type": "string", "enum": revincludes}, "Include referrers")
        )
    return out


def _search_operation(rtype: str, settings: Settings) -> dict[str, Any]:
    outcome = {"description": "OperationOutcome", "content": {_FHIR_JSON: {"schema": {}}}}
    return {
        "tags": ["FHIR search"],
        "summary": f"Search {rtype}",
        "operationId": f"search_{rtype}",
        "parameters": search_parameters(rtype, settings),
        "security": [{"bearerAuth": []}],
        "responses": {
            "200": {
                "description": "searchset Bundle",
                "content": {_FHIR_JSON: {"schema": {"type": "object"}}},
            },
            "400": outcome,
            "401": outcome,
            "403": outcome,
        },
    }


def install_openapi(app: FastAPI, settings: Settings) -> None:
    """Makes `app.openapi()` (served at /openapi.json) add the per-type search paths."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            paths = schema.setdefault("paths", {})
            for rtype in SEARCH_PARAMS:
                paths.setdefault(f"/fhir/{rtype}", {})["get"] = _search_operation(rtype, settings)
            schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
            schemes.setdefault("bearerAuth", {"type": "http", "scheme": "bearer"})
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
