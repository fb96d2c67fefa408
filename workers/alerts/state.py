"""The stored state of one concern episode, and its JSON form.

An episode remembers what it has already told people (evidence, findings, priority, requests),
because the next decision is a comparison with that memory: it is what makes re-evaluating
unchanged data a no-op, and what lets a closed episode's evidence be consumed. The state is
frozen and round-trips losslessly through JSON so it can sit in one JSON column.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast, get_args

from workers.rules.model import (
    FINDING_CODES,
    PRIORITY_ORDER,
    Evidence,
    FindingCode,
    Priority,
    RedFlagCode,
)

EpisodeStatus = Literal["open", "closed"]
STATE_SCHEMA_VERSION = 1

_RED_FLAG_CODES: tuple[str, ...] = get_args(RedFlagCode)


def _finding_code(value: object) -> FindingCode:
    if value not in FINDING_CODES:
        raise ValueError(f"unknown finding code {value!r}")
    return value


def _priority(value: object) -> Priority:
    if value not in PRIORITY_ORDER:
        raise ValueError(f"unknown priority {value!r}")
    return value


def _red_flag_code(value: object) -> RedFlagCode:
    if value not in _RED_FLAG_CODES:
        raise ValueError(f"unknown red-flag code {value!r}")
    return cast(RedFlagCode, value)


def _status(value: object) -> EpisodeStatus:
    if value not in ("open", "closed"):
        raise ValueError(f"unknown episode status {value!r}")
    return value


def _time(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO date-time, got {value!r}")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"date-time without a time zone: {value!r}")
    return parsed


@dataclass(frozen=True, slots=True)
class EvidenceRecord:
    """A triggering record as the episode noted it, so it can be cited after it ages out."""

    reference: str
    kind: str
    date: datetime
    display: str

    @classmethod
    def from_evidence(cls, evidence: Evidence) -> EvidenceRecord:
        return cls(evidence.reference, evidence.kind, evidence.clinical_date, evidence.display)

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "kind": self.kind,
            "date": self.date.isoformat(),
            "display": self.display,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EvidenceRecord:
        return cls(
            str(data["reference"]), str(data["kind"]), _time(data["date"]), str(data["display"])
        )


@dataclass(frozen=True, slots=True)
class EpisodeFinding:
    """One finding code the episode carries, with the evidence it has recorded for it.

    `reason` and `facts` are the words from the assessment that last changed this finding; they
    are kept rather than re-derived so that re-evaluation never rewrites an unchanged alert.
    """

    code: FindingCode
    priority: Priority  # the finding's own priority (before the combination rule)
    date: datetime  # the finding's clinical date (newest triggering record when recorded)
    reason: str
    facts: str  # values, units, limits, baseline, grade, supporting records, in words
    evidence: tuple[EvidenceRecord, ...]  # sorted by reference, never empty

    @property
    def evidence_refs(self) -> frozenset[str]:
        return frozenset(e.reference for e in self.evidence)

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "priority": self.priority,
            "date": self.date.isoformat(),
            "reason": self.reason,
            "facts": self.facts,
            "evidence": [e.to_json() for e in self.evidence],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EpisodeFinding:
        return cls(
            code=_finding_code(data["code"]),
            priority=_priority(data["priority"]),
            date=_time(data["date"]),
            reason=str(data["reason"]),
            facts=str(data.get("facts", "")),
            evidence=tuple(EvidenceRecord.from_json(e) for e in data["evidence"]),
        )


@dataclass(frozen=True, slots=True)
class RecordedRedFlag:
    """A red-flag qualifier shown on the episode's Flag (it never changes the priority)."""

    code: RedFlagCode
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "text": self.text}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RecordedRedFlag:
        return cls(_red_flag_code(data["code"]), str(data["text"]))


@dataclass(frozen=True, slots=True)
class CommunicationRecord:
    """A CommunicationRequest this episode made: what it said, so later changes can be judged."""

    id: str
    priority: Priority
    finding_codes: tuple[FindingCode, ...]
    evidence_refs: tuple[str, ...]
    authored_at: datetime

    @property
    def reference(self) -> str:
        return f"CommunicationRequest/{self.id}"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "priority": self.priority,
            "finding_codes": list(self.finding_codes),
            "evidence_refs": list(self.evidence_refs),
            "authored_at": self.authored_at.isoformat(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CommunicationRecord:
        return cls(
            id=str(data["id"]),
            priority=_priority(data["priority"]),
            finding_codes=tuple(_finding_code(c) for c in data["finding_codes"]),
            evidence_refs=tuple(str(r) for r in data["evidence_refs"]),
            authored_at=_time(data["authored_at"]),
        )


@dataclass(frozen=True, slots=True)
class PriorityChange:
    """One change of the episode's priority; `from_priority` is None when the episode opened."""

    at: datetime
    from_priority: Priority | None
    to_priority: Priority
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "from": self.from_priority,
            "to": self.to_priority,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PriorityChange:
        raw_from = data.get("from")
        return cls(
            at=_time(data["at"]),
            from_priority=None if raw_from is None else _priority(raw_from),
            to_priority=_priority(data["to"]),
            reason=str(data["reason"]),
        )


@dataclass(frozen=True, slots=True)
class EpisodeState:
    """One patient's concern episode: at most one is open per patient (a DB constraint)."""

    id: str
    patient: str  # "Patient/x"
    status: EpisodeStatus
    opened_at: datetime
    flag_id: str
    priority: Priority  # current (or, once closed, last) overall priority
    findings: tuple[EpisodeFinding, ...]  # sorted by code
    red_flags: tuple[RecordedRedFlag, ...]  # sorted by code
    communications: tuple[CommunicationRecord, ...]  # oldest first
    priority_history: tuple[PriorityChange, ...]  # oldest first; the first entry is the opening
    ruleset_version: str  # the rule set that last changed the episode
    closed_at: datetime | None = None
    closed_reason: str | None = None

    @property
    def finding_codes(self) -> tuple[FindingCode, ...]:
        return tuple(f.code for f in self.findings)

    @property
    def evidence_refs(self) -> frozenset[str]:
        """The triggering evidence this episode recorded: consumed once the episode is closed."""
        return frozenset(ref for f in self.findings for ref in f.evidence_refs)

    @property
    def flag_reference(self) -> str:
        return f"Flag/{self.flag_id}"

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": STATE_SCHEMA_VERSION,
            "id": self.id,
            "patient": self.patient,
            "status": self.status,
            "opened_at": self.opened_at.isoformat(),
            "closed_at": None if self.closed_at is None else self.closed_at.isoformat(),
            "closed_reason": self.closed_reason,
            "flag_id": self.flag_id,
            "priority": self.priority,
            "ruleset_version": self.ruleset_version,
            # Redundant with "findings", written so SQL/JSON queries need not unnest findings.
            "finding_codes": list(self.finding_codes),
            "evidence_refs": sorted(self.evidence_refs),
            "findings": [f.to_json() for f in self.findings],
            "red_flags": [r.to_json() for r in self.red_flags],
            "communications": [c.to_json() for c in self.communications],
            "priority_history": [p.to_json() for p in self.priority_history],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EpisodeState:
        schema = data.get("schema", STATE_SCHEMA_VERSION)
        if schema != STATE_SCHEMA_VERSION:
            raise ValueError(f"unsupported episode state schema {schema!r}")
        raw_closed = data.get("closed_at")
        raw_reason = data.get("closed_reason")
        return cls(
            id=str(data["id"]),
            patient=str(data["patient"]),
            status=_status(data["status"]),
            opened_at=_time(data["opened_at"]),
            closed_at=None if raw_closed is None else _time(raw_closed),
            closed_reason=None if raw_reason is None else str(raw_reason),
            flag_id=str(data["flag_id"]),
            priority=_priority(data["priority"]),
            ruleset_version=str(data["ruleset_version"]),
            findings=tuple(EpisodeFinding.from_json(f) for f in data.get("findings", ())),
            red_flags=tuple(RecordedRedFlag.from_json(r) for r in data.get("red_flags", ())),
            communications=tuple(
                CommunicationRecord.from_json(c) for c in data.get("communications", ())
            ),
            priority_history=tuple(
                PriorityChange.from_json(p) for p in data.get("priority_history", ())
            ),
        )
