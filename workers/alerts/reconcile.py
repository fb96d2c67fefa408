"""What an episode becomes in the light of a new assessment (state only, no FHIR, no writes).

Which recorded evidence is withdrawn is the withdrawal policy's call (workers/alerts/
withdrawal.py); everything else the episode recorded is kept. Evidence only ever accumulates
otherwise, and the priority only rises, except after a withdrawal: then it is recomputed (the
caller records the change and its reason).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from workers.alerts.state import EpisodeFinding, EpisodeState, EvidenceRecord, RecordedRedFlag
from workers.alerts.summary import finding_facts
from workers.alerts.withdrawal import is_withdrawn, withdrawal_reason
from workers.rules.config import RuleConfig
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


def highest(*priorities: Priority | None) -> Priority | None:
    """The most pressing of the given priorities (None when none is given)."""
    present: list[Priority] = [p for p in priorities if p is not None]
    if not present:
        return None
    top: Priority = max(present, key=priority_rank)
    return top


def combined_priority(findings: Iterable[EpisodeFinding], config: RuleConfig) -> Priority | None:
    """Spec §5 over what an episode holds: the rule engine's own priority rule and data."""
    priority, _reason = overall_priority(tuple(findings), config)
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


def opening_content(assessment: Assessment, config: RuleConfig) -> Reconciled:
    """The content of a new episode: exactly what the assessment found, at its priority."""
    findings = tuple(sorted((episode_finding(f) for f in assessment.findings), key=_code))
    priority = assessment.priority or combined_priority(findings, config)
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
    config: RuleConfig,
    retracted: frozenset[str],
) -> Reconciled:
    """The open episode's content after `assessment` (see the module docstring for the rules).

    `retracted`: the episode's evidence whose stored record is now withdrawn
    (`withdrawal.retracted_evidence`); `config` is the rule set the assessment was made with."""
    current = {f.code: f for f in assessment.findings}
    findings: list[EpisodeFinding] = []
    withdrawals: list[Withdrawal] = []
    for recorded in episode.findings:
        finding = current.get(recorded.code)
        gone = tuple(
            r
            for r in recorded.evidence
            if is_withdrawn(r, recorded.code, finding, assessment, config, retracted)
        )
        withdrawals.extend(
            Withdrawal(recorded.code, r, withdrawal_reason(assessment, recorded.code, r, retracted))
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
        recomputed = highest(assessment.priority, combined_priority(findings, config)) or ceiling
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
