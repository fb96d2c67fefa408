"""What an episode becomes in the light of a new assessment (state only, no FHIR, no writes).

An assessment only sees *recent* evidence, so evidence the episode recorded can be absent from
it for three different reasons, and only one of them is a retraction:

- aged out: its clinical date is now older than the finding's look-back window (or newer than
  the evaluation time, when evaluations run out of order). Time passing must not take back an
  alert nobody has acted on, and "running twice gives the same alerts" requires it: kept.
- superseded: the same finding still fires on a newer record (e.g. a later calcium value became
  the latest one). The older record still explains why the episode exists: kept.
- withdrawn: still inside the window, and the finding no longer rests on it. The record was
  entered-in-error, refuted, cancelled or corrected, or the patient stopped qualifying (the
  breast-cancer history was refuted, a bone metastasis is now known): it is removed, and the
  episode is recomputed from what remains.

Evidence only ever accumulates otherwise, and the priority only rises, except after a
withdrawal: then it is recomputed (the caller records the change and its reason).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from workers.alerts.codes import FINDING_DISPLAY
from workers.alerts.settings import AlertSettings
from workers.alerts.state import EpisodeFinding, EpisodeState, EvidenceRecord, RecordedRedFlag
from workers.alerts.summary import finding_facts
from workers.rules import load_config
from workers.rules.model import (
    Assessment,
    Evidence,
    Finding,
    FindingCode,
    Priority,
    RedFlag,
    priority_rank,
)
from workers.rules.priority import overall_priority


def _suppressed_by_known_metastasis() -> frozenset[FindingCode]:
    """Spec §1: findings a known bone metastasis suppresses (hypercalcemia below a grade)."""
    config = load_config()
    partly: frozenset[FindingCode] = (
        frozenset({"hypercalcemia"})
        if config.known_metastasis_min_hypercalcemia_grade > 1
        else frozenset()
    )
    return config.known_metastasis_suppresses | partly


def highest(*priorities: Priority | None) -> Priority | None:
    """The most pressing of the given priorities (None when none is given)."""
    present: list[Priority] = [p for p in priorities if p is not None]
    if not present:
        return None
    top: Priority = max(present, key=priority_rank)
    return top


def combined_priority(findings: Iterable[EpisodeFinding]) -> Priority | None:
    """Spec §5 over what an episode holds: the rule engine's own priority rule and data."""
    priority, _reason = overall_priority(tuple(findings), load_config())
    return priority


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """A recorded piece of evidence the episode no longer rests on, and why, in words."""

    code: FindingCode
    evidence: EvidenceRecord
    why: str


@dataclass(frozen=True, slots=True)
class Reconciled:
    """The episode's content after an assessment; priority None when nothing is left."""

    findings: tuple[EpisodeFinding, ...]
    red_flags: tuple[RecordedRedFlag, ...]
    priority: Priority | None
    withdrawals: tuple[Withdrawal, ...]


def episode_finding(finding: Finding) -> EpisodeFinding:
    """A finding as an episode records it the first time it sees it."""
    return EpisodeFinding(
        code=finding.code,
        priority=finding.priority,
        date=finding.date,
        reason=finding.reason,
        facts=finding_facts(finding),
        evidence=_records((), finding.evidence),
    )


def _records(kept: Iterable[EvidenceRecord], new: Iterable[Evidence]) -> tuple[EvidenceRecord, ...]:
    """Recorded evidence plus the assessment's, one per reference (the first record wins)."""
    by_ref = {r.reference: r for r in kept}
    for evidence in new:
        by_ref.setdefault(evidence.reference, EvidenceRecord.from_evidence(evidence))
    return tuple(sorted(by_ref.values(), key=lambda r: r.reference))


def opening_content(assessment: Assessment) -> Reconciled:
    """The content of a new episode: exactly what the assessment found, at its priority."""
    findings = tuple(sorted((episode_finding(f) for f in assessment.findings), key=_code))
    priority = assessment.priority or combined_priority(findings)
    return Reconciled(findings, _merge_red_flags((), assessment.red_flags), priority, ())


def _code(finding: EpisodeFinding) -> str:
    return finding.code


def _merge_red_flags(
    recorded: Sequence[RecordedRedFlag], seen: Sequence[RedFlag]
) -> tuple[RecordedRedFlag, ...]:
    """Red flags accumulate; a flag's words are kept from when it was first recorded."""
    by_code = {r.code: r for r in recorded}
    for red_flag in seen:
        by_code.setdefault(red_flag.code, RecordedRedFlag(red_flag.code, red_flag.text))
    return tuple(sorted(by_code.values(), key=lambda r: r.code))


def _is_withdrawn(
    record: EvidenceRecord,
    code: FindingCode,
    current: Finding | None,
    assessment: Assessment,
    settings: AlertSettings,
    retracted: frozenset[str] | None = None,
) -> bool:
    if current is not None and any(e.reference == record.reference for e in current.evidence):
        return False
    if retracted is not None:
        if record.reference in retracted:
            return True
        within = assessment.at - settings.recent_window(code) <= record.date <= assessment.at
        no_longer_qualifies = not assessment.eligible or (
            assessment.known_bone_metastasis and code in _suppressed_by_known_metastasis()
        )
        return within and no_longer_qualifies
    if record.date > assessment.at:
        return False  # not visible to an evaluation at this time (out-of-order run)
    if record.date < assessment.at - settings.recent_window(code):
        return False  # aged out of the look-back window
    # Superseded when the same finding now rests on a newer record.
    return current is None or not any(e.clinical_date > record.date for e in current.evidence)


def _withdrawal_reason(
    assessment: Assessment,
    code: FindingCode,
    record: EvidenceRecord,
    retracted: frozenset[str] | None = None,
) -> str:
    label = FINDING_DISPLAY[code].lower()
    if retracted is not None and record.reference in retracted:
        why = "the record was entered in error, refuted, cancelled or deleted"
    elif not assessment.eligible:
        why = "no breast-cancer history remains on record"
    elif assessment.known_bone_metastasis and code in _suppressed_by_known_metastasis():
        why = "a bone metastasis is now recorded as known"
    else:
        why = (
            "the record no longer supports it (entered in error, refuted, cancelled, corrected "
            "or overtaken by a newer result)"
        )
    return f"{record.reference} ({record.display}) no longer supports {label}: {why}"


def _merge_finding(
    recorded: EpisodeFinding,
    kept: tuple[EvidenceRecord, ...],
    current: Finding | None,
    *,
    touched: bool,
) -> EpisodeFinding | None:
    """One finding after the assessment; None when none of its evidence is left."""
    if current is None:
        if not kept:
            return None
        if not touched:
            return recorded
        # Some evidence withdrawn, the rest aged out: keep the recorded priority (the rules can
        # no longer re-judge it), date it by its newest remaining record.
        return replace(recorded, evidence=kept, date=max(r.date for r in kept))
    evidence = _records(kept, current.evidence)
    if touched:
        priority, date = current.priority, current.date
    else:
        priority = highest(recorded.priority, current.priority) or current.priority
        date = min(recorded.date, current.date)
    if (evidence, priority, date) == (recorded.evidence, recorded.priority, recorded.date):
        return recorded
    if not touched and priority_rank(current.priority) < priority_rank(recorded.priority):
        # The words must explain the recorded (higher) priority: keep them.
        return replace(recorded, evidence=evidence, date=date)
    return EpisodeFinding(
        code=recorded.code,
        priority=priority,
        date=date,
        reason=current.reason,
        facts=finding_facts(current),
        evidence=evidence,
    )


def reconcile(
    episode: EpisodeState,
    assessment: Assessment,
    settings: AlertSettings,
    retracted: frozenset[str] | None = None,
) -> Reconciled:
    """The open episode's content after `assessment` (see the module docstring for the rules)."""
    current = {f.code: f for f in assessment.findings}
    findings: list[EpisodeFinding] = []
    withdrawals: list[Withdrawal] = []
    for recorded in episode.findings:
        finding = current.get(recorded.code)
        gone = tuple(
            r
            for r in recorded.evidence
            if _is_withdrawn(r, recorded.code, finding, assessment, settings, retracted)
        )
        withdrawals.extend(
            Withdrawal(
                recorded.code, r, _withdrawal_reason(assessment, recorded.code, r, retracted)
            )
            for r in gone
        )
        kept = tuple(r for r in recorded.evidence if r not in gone)
        merged = _merge_finding(recorded, kept, finding, touched=bool(gone))
        if merged is not None:
            findings.append(merged)
    known = {f.code for f in episode.findings}
    findings.extend(episode_finding(f) for f in assessment.findings if f.code not in known)
    findings.sort(key=_code)

    if not findings:
        priority: Priority | None = None
    elif withdrawals:
        # Recompute from what remains, but a withdrawal never raises the priority by itself:
        # any rise must come from the assessment.
        ceiling = highest(episode.priority, assessment.priority) or episode.priority
        recomputed = highest(assessment.priority, combined_priority(findings)) or ceiling
        lowest: Priority = min(recomputed, ceiling, key=priority_rank)
        priority = lowest
    else:
        priority = highest(episode.priority, assessment.priority)
    return Reconciled(
        tuple(findings),
        _merge_red_flags(episode.red_flags, assessment.red_flags),
        priority,
        tuple(withdrawals),
    )
