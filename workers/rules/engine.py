"""`evaluate`: one patient's stored resources and a time in, one Assessment out.

A pure function of its arguments (no I/O, no clock, no logging): the same records give the same
Assessment whatever their order or duplication, which is what lets the worker re-run an
evaluation after a crash or out of order and reach the same alerts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from contract import BREAST_CANCER, KNOWN_BONE_METASTASIS
from workers.rules.config import RuleConfig
from workers.rules.dates import as_utc
from workers.rules.findings import (
    Context,
    hypercalcemia,
    new_back_pain,
    rising_alp,
    rising_calcium,
    suspected_mscc,
)
from workers.rules.model import Assessment, Finding, FindingCode
from workers.rules.priority import overall_priority
from workers.rules.records import collect
from workers.rules.redflags import red_flags

RULES: tuple[tuple[FindingCode, Callable[[Context], Finding | None]], ...] = (
    ("hypercalcemia", hypercalcemia),
    ("new-back-pain", new_back_pain),
    ("rising-alp", rising_alp),
    ("rising-calcium", rising_calcium),
    ("suspected-mscc", suspected_mscc),
)


def evaluate(
    patient: str,
    resources: Iterable[Mapping[str, Any]],
    at: datetime,
    *,
    config: RuleConfig,
    consumed: frozenset[str] = frozenset(),
) -> Assessment:
    """Assess one patient as of `at` (naive = UTC).

    `resources` are the patient's stored FHIR R4 resources (JSON dicts; types other than
    Condition and Observation are ignored). `consumed` holds references ("Observation/x") of
    evidence from closed alert episodes: history, never a trigger again. `config` is the rule
    set, loaded once by the caller (`load_config`), never read here.
    """
    cfg = config
    moment = as_utc(at)
    records = collect(resources, moment, cfg)
    cancer = records.events_in(BREAST_CANCER)
    eligible = bool(cancer or records.undated.get(BREAST_CANCER))
    known = bool(
        records.events_in(KNOWN_BONE_METASTASIS) or records.undated.get(KNOWN_BONE_METASTASIS)
    )
    if not eligible:
        return Assessment(
            patient=patient,
            at=moment,
            ruleset_version=cfg.version,
            eligible=False,
            known_bone_metastasis=known,
            priority_reason="Not eligible: no breast-cancer Condition on record.",
            notes=records.notes,
        )
    ctx = Context(
        at_day=moment.toordinal(),
        config=cfg,
        records=records,
        consumed=frozenset(consumed),
        known_metastasis=known,
        first_cancer_day=cancer[0].day if cancer else None,
    )
    findings: list[Finding] = []
    for code, rule in RULES:
        if known and code in cfg.known_metastasis_suppresses:
            continue
        finding = rule(ctx)
        if finding is not None:
            findings.append(finding)
    findings.sort(key=lambda f: f.code)
    flags = red_flags(ctx, findings)
    priority, reason = overall_priority(findings, cfg)
    if known and findings:
        reason += (
            f" Known bone metastasis: {', '.join(sorted(cfg.known_metastasis_suppresses))} not"
            " looked for, hypercalcemia reported from CTCAE grade"
            f" {cfg.known_metastasis_min_hypercalcemia_grade}."
        )
    return Assessment(
        patient=patient,
        at=moment,
        ruleset_version=cfg.version,
        eligible=True,
        known_bone_metastasis=known,
        findings=tuple(findings),
        red_flags=flags,
        priority=priority,
        priority_reason=reason,
        notes=tuple(sorted(set(records.notes) | set(ctx.notes))),
    )
