"""What one worklist entry shows: plain frozen data, built by `worklist`, read by templates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from service.web.extract import PRIORITY_WORD, priority_rank
from service.web.trend import Chart

_FAR_FUTURE = datetime.max.replace(year=9999)


@dataclass(frozen=True, slots=True)
class EvidenceItem:
    reference: str
    label: str  # what the record is: "Calcium [Mass/volume] in Serum or Plasma"
    when: str  # as the page shows it
    sort_when: datetime | None
    value: str | None  # "11.8 mg/dL"
    note: str | None  # "status amended", "no longer stored"


@dataclass(frozen=True, slots=True)
class Finding:
    label: str
    reason: str


@dataclass(frozen=True, slots=True)
class RedFlag:
    label: str
    text: str


@dataclass(frozen=True, slots=True)
class Alert:
    """One concern episode: its Flag, and the open CommunicationRequest that asks for action
    (None once acknowledged)."""

    patient_ref: str
    patient_name: str | None
    priority: str
    raised: datetime | None  # when the episode's first request was made
    raised_text: str
    age_text: str
    flag_id: str | None
    flag_version: str | None
    request_id: str | None
    request_version: str | None
    acknowledged: str | None  # "by nurse1 at 2024-05-01 14:03 UTC"
    summary: str
    findings: tuple[Finding, ...]
    red_flags: tuple[RedFlag, ...]
    evidence: tuple[EvidenceItem, ...]
    charts: tuple[Chart, ...]
    # The triage row (issue 13): who, how pressing, by when, to whom.
    mrn: str | None = None
    age_sex: str = ""
    status: str = "open"  # open, snoozed, escalated (still waiting), acknowledged, closed
    snoozed_until: datetime | None = None
    deadline: datetime | None = None
    deadline_text: str = ""
    overdue: bool = False
    recipient: str = ""

    @property
    def key(self) -> str:
        """A stable, HTML-id-safe name (FHIR ids are [A-Za-z0-9.-])."""
        if self.flag_id:
            return f"flag-{self.flag_id}"
        return f"request-{self.request_id}"

    @property
    def priority_word(self) -> str:
        return PRIORITY_WORD.get(self.priority, self.priority.capitalize() or "Unknown")

    @property
    def sort_key(self) -> tuple[int, datetime, str]:
        raised = self.raised.replace(tzinfo=None) if self.raised else _FAR_FUTURE
        return (priority_rank(self.priority), raised, self.key)


@dataclass(frozen=True, slots=True)
class Worklist:
    waiting: tuple[Alert, ...]  # an open request: needs acknowledging
    acknowledged: tuple[Alert, ...]  # Flag still active, nothing left to acknowledge
    closed: tuple[Alert, ...] = ()  # closed since a given time (the "closed today" filter)

    @property
    def count(self) -> int:
        return len(self.waiting) + len(self.acknowledged) + len(self.closed)
