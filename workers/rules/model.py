"""Types the rule engine returns and the alert life cycle consumes.

They are frozen so an assessment can be compared, hashed and replayed: evaluation is a pure
function of stored state, and equality of two assessments is how tests prove determinism.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

# The codes and the priority order are the alert contract's, spelled once in `contract`.
from contract import (
    FINDING_CODES,
    PRIORITY_ORDER,
    FindingCode,
    Priority,
    RedFlagCode,
    priority_rank,
)

__all__ = [
    "FINDING_CODES",
    "PRIORITY_ORDER",
    "Assessment",
    "Evidence",
    "Finding",
    "FindingCode",
    "Priority",
    "RedFlag",
    "RedFlagCode",
    "priority_rank",
]


@dataclass(frozen=True, slots=True)
class Evidence:
    """One stored record that a finding rests on, described without re-reading it."""

    reference: str  # "Observation/abc" or "Condition/xyz"
    clinical_date: datetime  # timezone-aware, UTC
    kind: str  # value-set name, e.g. "BACK_PAIN", "CALCIUM_TOTAL", "ALBUMIN", "ALP"
    display: str  # short words for the alert text, e.g. "calcium 11.8 mg/dL on 2026-11-01"
    value: float | None = None  # as recorded (before unit conversion)
    unit: str | None = None  # as recorded
    comparator: str | None = None  # "<", ">", "<=", ">=" when the value carried one


@dataclass(frozen=True, slots=True)
class Finding:
    """A rule that fired, with the records that made it fire and the reason in words."""

    code: FindingCode
    priority: Priority
    date: datetime  # clinical date of the newest triggering record
    evidence: tuple[Evidence, ...]  # the triggering records (never empty)
    reason: str  # plain words: what was seen, against which limit/baseline
    supporting: tuple[Evidence, ...] = ()  # records used but not triggering (albumin, baseline)
    grade: int | None = None  # CTCAE v5 grade for hypercalcemia
    value: float | None = None  # normalised value judged (mg/dL for calcium, U/L for ALP...)
    unit: str | None = None  # unit of `value`, `baseline` and `upper_limit`
    baseline: float | None = None
    upper_limit: float | None = None
    comparator: str | None = None


@dataclass(frozen=True, slots=True)
class RedFlag:
    """A qualifier listed on the alert; it never changes the priority."""

    code: RedFlagCode
    text: str
    evidence: tuple[Evidence, ...] = ()


@dataclass(frozen=True, slots=True)
class Assessment:
    """Everything the rules concluded about one patient at one evaluation time."""

    patient: str  # "Patient/123"
    at: datetime  # evaluation time T (timezone-aware, UTC)
    ruleset_version: str
    eligible: bool
    known_bone_metastasis: bool
    findings: tuple[Finding, ...] = ()  # sorted by code, at most one per code
    red_flags: tuple[RedFlag, ...] = ()
    priority: Priority | None = None  # overall, after the combination rule; None = no finding
    priority_reason: str = ""
    notes: tuple[str, ...] = field(default=())  # evaluation log: skipped values, by resource id

    @property
    def evidence_refs(self) -> frozenset[str]:
        return frozenset(e.reference for f in self.findings for e in f.evidence)
