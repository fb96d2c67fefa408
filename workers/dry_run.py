"""Dry run: what alerts would this data produce? Shared by `POST /fhir/$evaluate` and
`fhir-alerts evaluate`, and built from the same pieces as the live task (reference resolution,
validation, the rule engine, the episode decisions), so the three cannot disagree. Nothing is
stored and no stored data is consulted: the input is judged on its own, as a new patient.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from service.bundles import resolved_resources
from service.errors import FHIRError, Issue
from service.fhir.index import extract
from service.fhir.registry import EVALUATED_TYPES, is_served
from service.fhir.validate import validate_resource
from workers.alerts import AlertSettings, decide
from workers.rules import evaluate, load_config


def _validated(resources: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    issues: list[Issue] = []
    kept = []
    for i, res in enumerate(resources):
        rtype = res.get("resourceType")
        if not isinstance(rtype, str) or not is_served(rtype):
            continue  # skipped, as a transaction would skip it
        _t, problems = validate_resource(res, where=f"entry[{i}]")
        issues.extend(problems)
        kept.append(res)
    if issues:
        raise FHIRError(422, issues)
    return kept


def assess_resources(
    resources: Iterable[Mapping[str, Any]], at: datetime, team: str
) -> list[dict[str, Any]]:
    """The Flags and CommunicationRequests the resources would produce, per patient."""
    by_patient: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for res in resources:
        rtype = res.get("resourceType")
        if rtype not in EVALUATED_TYPES:
            continue
        patient = extract(str(rtype), str(res.get("id", "")), res).patient_id
        if patient:
            by_patient[patient].append(dict(res))
    config = load_config()
    settings = AlertSettings(oncology_team=team)
    out: list[dict[str, Any]] = []
    for patient in sorted(by_patient):
        assessment = evaluate(f"Patient/{patient}", by_patient[patient], at, config=config)
        plan = decide(
            assessment, None, {}, now=at, settings=settings, new_id=lambda: str(uuid.uuid4())
        )
        out.extend(w.resource for w in plan.writes)
    return out


def evaluate_bundle(body: Any, at: datetime | None, team: str) -> dict[str, Any]:
    if not isinstance(body, Mapping) or not isinstance(body.get("resourceType"), str):
        raise FHIRError.of(422, "invalid", "$evaluate takes a Bundle or a resource")
    if at is None:
        at = datetime.now(UTC)
    elif at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    resources = _validated(resolved_resources(body))
    alerts = assess_resources(resources, at, team)
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in alerts if r.get("id")],
    }
