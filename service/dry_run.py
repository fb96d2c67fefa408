"""Dry run: what alerts would this data produce? `POST /fhir/$evaluate` and
`fhir-alerts evaluate`. Nothing is stored and no stored data is consulted: the input is judged
on its own, as a new patient.

The service side of it: the Bundle is resolved by the transaction planner (ids assigned,
`urn:uuid` and conditional references rewritten, exactly as a transaction would) and validated
as a write would be; the plain resources then go to the `Evaluator` the composition root handed
in (the worker's pure rules and episode decisions, `workers.dry_run`), so the service never
imports worker code and the three paths (live task, $evaluate, CLI) cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from service.errors import FHIRError, Issue
from service.fhir.registry import is_served
from service.fhir.validate import validate_resource
from service.transaction_plan import NoStore, plan_bundle


class Evaluator(Protocol):
    def __call__(self, resources: list[dict[str, Any]], at: datetime) -> list[dict[str, Any]]:
        """The Flags and CommunicationRequests the (resolved, valid) resources would produce
        at `at` (aware, UTC); pure."""
        ...


def resolved_resources(bundle: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The resources of any Bundle (or a single resource) with ids assigned and references
    rewritten by the transaction planner, against no stored data.

    Entries without a request (collection, searchset) are taken as `PUT Type/id` when the
    resource has an id and `POST Type` otherwise, as `fhir-alerts replay` sends them.
    """
    if bundle.get("resourceType") != "Bundle":
        return [dict(bundle)]
    entries = []
    for raw in bundle.get("entry") or []:
        res = raw.get("resource") if isinstance(raw, Mapping) else None
        if not isinstance(res, Mapping) or not isinstance(res.get("resourceType"), str):
            continue
        entry = dict(raw)
        req = raw.get("request")
        if not isinstance(req, Mapping) or req.get("method") not in ("POST", "PUT"):
            rid = res.get("id")
            entry["request"] = (
                {"method": "PUT", "url": f"{res['resourceType']}/{rid}"}
                if isinstance(rid, str) and rid
                else {"method": "POST", "url": res["resourceType"]}
            )
        entries.append(entry)
    plan = plan_bundle({"entry": entries}, NoStore(), base=None, atomic=True)
    return [e.resource for e in plan.entries if e.resource is not None and e.resource_id]


def validated(resources: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The served resources, each valid as a write requires (else one 422 naming them all);
    types this server does not serve are skipped, as a transaction would skip them."""
    issues: list[Issue] = []
    kept = []
    for i, res in enumerate(resources):
        rtype = res.get("resourceType")
        if not isinstance(rtype, str) or not is_served(rtype):
            continue
        _t, problems = validate_resource(res, where=f"entry[{i}]")
        issues.extend(problems)
        kept.append(res)
    if issues:
        raise FHIRError(422, issues)
    return kept


def evaluate_bundle(body: Any, at: datetime | None, evaluator: Evaluator) -> dict[str, Any]:
    """The collection Bundle of the alerts `body` would produce at `at` (default: now)."""
    if not isinstance(body, Mapping) or not isinstance(body.get("resourceType"), str):
        raise FHIRError.of(422, "invalid", "$evaluate takes a Bundle or a resource")
    if at is None:
        at = datetime.now(UTC)
    elif at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    alerts = evaluator(validated(resolved_resources(body)), at)
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in alerts if r.get("id")],
    }
