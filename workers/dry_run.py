"""The dry run's evaluation: the Flags and CommunicationRequests plain resources would
produce, from the same rule engine and episode decisions as the live task. Pure apart from
reading the rule set: the service resolves and validates the input (`service.dry_run`, shared
by `POST /fhir/$evaluate` and `fhir-alerts evaluate`) and calls this through the `Evaluator`
the composition root hands it (`workers.embedded.build_app`, the CLI), so the service never
imports worker code. Nothing is stored and no stored data is consulted. The rule set is the
deployment's (`ALERTS_RULESET`), loaded once per call like the worker loads it, and handed to
the pure code.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from service.config import Settings
from service.dry_run import Evaluator
from service.fhir.index import extract
from service.fhir.registry import EVALUATED_TYPES
from workers.alerts import AlertSettings, decide
from workers.rules import RuleConfig, evaluate, load_config


def assess_resources(
    resources: Iterable[Mapping[str, Any]],
    at: datetime,
    *,
    settings: AlertSettings,
    config: RuleConfig,
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
    out: list[dict[str, Any]] = []
    for patient in sorted(by_patient):
        assessment = evaluate(f"Patient/{patient}", by_patient[patient], at, config=config)
        plan = decide(
            assessment,
            None,
            {},
            now=at,
            settings=settings,
            config=config,
            new_id=lambda: str(uuid.uuid4()),
            retracted=frozenset(),  # a new patient: no episode, nothing recorded to withdraw
        )
        out.extend(w.resource for w in plan.writes)
    return out


def evaluator(settings: Settings) -> Evaluator:
    """The `Evaluator` the composition root hands the service's dry run: the deployment's
    rule set and oncology team."""

    def evaluate_resources(resources: list[dict[str, Any]], at: datetime) -> list[dict[str, Any]]:
        return assess_resources(
            resources,
            at,
            settings=AlertSettings(oncology_team=settings.oncology_team),
            config=load_config(settings.ruleset),
        )

    return evaluate_resources
