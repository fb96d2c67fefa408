"""The withdrawal policy (spec §6): which recorded evidence an open episode stops resting on.

An assessment only sees *recent* evidence, so evidence the episode recorded can be absent from
it for three different reasons, and only one of them is a withdrawal:

- aged out: its clinical date is now older than the finding's look-back window (or newer than
  the evaluation time, when evaluations run out of order). Time passing must not take back an
  alert nobody has acted on, and "running twice gives the same alerts" requires it: kept.
- no longer firing: the same finding rests on a newer record, or a newer normal result means
  the rule stops firing. The record still explains why the episode exists and the nurse
  judges it: kept.
- withdrawn: the stored record itself was entered-in-error, refuted, cancelled or deleted
  (`retracted_evidence`), or, inside the window, the patient stopped qualifying (the
  breast-cancer history was refuted, a bone metastasis is now known).

Pure: the caller reads the episode's evidence from the store and hands it in; the status is
read by `workers.rules.status`, exactly as eligibility reads it (spec §8).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from contract import FINDING_DISPLAY
from workers.alerts.state import EpisodeState, EvidenceRecord
from workers.rules.config import RuleConfig
from workers.rules.model import Assessment, Finding, FindingCode
from workers.rules.status import withdrawn

StoredEvidence = Mapping[str, Mapping[str, Any]]
"""The episode's evidence as stored now, by reference ("Observation/x"); a reference the
store no longer holds (deleted, or never there) is absent."""


def retracted_evidence(episode: EpisodeState | None, stored: StoredEvidence) -> frozenset[str]:
    """Evidence of the open episode whose record is now withdrawn: entered-in-error, refuted,
    cancelled, or deleted (absent from `stored`). Only these retract an alert on their own (a
    newer normal result does not)."""
    if episode is None:
        return frozenset()
    return frozenset(
        ref
        for ref in episode.evidence_refs
        if (current := stored.get(ref)) is None or withdrawn(current)
    )


def suppressed_by_known_metastasis(config: RuleConfig) -> frozenset[FindingCode]:
    """Spec §1: findings a known bone metastasis suppresses (hypercalcemia below a grade)."""
    partly: frozenset[FindingCode] = (
        frozenset({"hypercalcemia"})
        if config.known_metastasis_min_hypercalcemia_grade > 1
        else frozenset()
    )
    return config.known_metastasis_suppresses | partly


def recent_window(code: FindingCode, config: RuleConfig) -> timedelta:
    """How far back a record still makes `code` fire at evaluation time (the rule set's)."""
    days = config.mscc_days if code == "suspected-mscc" else config.recent_days
    return timedelta(days=days)


def is_withdrawn(
    record: EvidenceRecord,
    code: FindingCode,
    current: Finding | None,
    assessment: Assessment,
    config: RuleConfig,
    retracted: frozenset[str],
) -> bool:
    """True when the episode's finding `code` no longer rests on `record`."""
    if current is not None and any(e.reference == record.reference for e in current.evidence):
        return False
    if record.reference in retracted:
        return True
    within = assessment.at - recent_window(code, config) <= record.date <= assessment.at
    no_longer_qualifies = not assessment.eligible or (
        assessment.known_bone_metastasis and code in suppressed_by_known_metastasis(config)
    )
    return within and no_longer_qualifies


def withdrawal_reason(
    assessment: Assessment,
    code: FindingCode,
    record: EvidenceRecord,
    retracted: frozenset[str],
) -> str:
    """Why, in words for the nurse, `record` no longer supports the finding `code` (one that
    `is_withdrawn` took away: retracted, or the patient stopped qualifying)."""
    label = FINDING_DISPLAY[code].lower()
    if record.reference in retracted:
        why = "the record was entered in error, refuted, cancelled or deleted"
    elif not assessment.eligible:
        why = "no breast-cancer history remains on record"
    else:
        why = "a bone metastasis is now recorded as known"
    return f"{record.reference} ({record.display}) no longer supports {label}: {why}"
