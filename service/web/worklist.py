"""Builds the worklist from stored Flags and CommunicationRequests.

Reads go through `service.interactions` with the signed-in nurse's principal, so the page can
show nothing the nurse's token could not read through the API. An entry is one open concern
episode (an active `bone-metastasis-risk` Flag), or an open alert request without a Flag; it
waits for acknowledgement while it has an open request, and leaves the list when its Flag is
closed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.orm import Session

import contract as c
from contract import Priority
from contract.deadlines import snooze_until
from ruleset import RuleConfig
from service import interactions
from service.ack_deadlines import DEFAULT_ACK_DEADLINES
from service.errors import FHIRError
from service.interactions import WriteContext
from service.web import extract as x
from service.web import triage
from service.web.models import Alert, EvidenceItem, Finding, RedFlag, Worklist
from service.web.trend import chart, trend_search_codes, trend_series

JSON = dict[str, Any]
_PAGE = 500
_EVIDENCE_TYPES = frozenset({"Observation", "Condition"})


def search_all(
    session: Session, ctx: WriteContext, rtype: str, items: Sequence[tuple[str, str]]
) -> list[JSON]:
    found: list[JSON] = []
    offset = 0
    while True:
        page = [*items, ("_count", str(_PAGE)), ("_offset", str(offset)), ("_total", "none")]
        _q, rows, _total = interactions.search(session, ctx, rtype, page)
        found.extend(orjson.loads(r) for r in rows)
        if len(rows) < _PAGE:
            return found
        offset += _PAGE


def read_json(session: Session, ctx: WriteContext, ref: str) -> JSON | None:
    """The resource a reference names, or None when it is gone or not readable."""
    rtype, _, rid = ref.partition("/")
    if not rid or "/" in rid:
        return None
    try:
        return interactions.read(session, ctx, rtype, rid).json()
    except FHIRError:
        return None


def _version(resource: Mapping[str, Any]) -> str | None:
    meta = resource.get("meta")
    version = meta.get("versionId") if isinstance(meta, Mapping) else None
    return str(version) if version else None


def _flag_ref(request: Mapping[str, Any]) -> str | None:
    for about in request.get("about") or ():
        ref = x.reference(about)
        if ref and ref.startswith("Flag/"):
            return ref
    return None


@dataclass
class _Episode:
    patient_ref: str
    flag: JSON | None = None
    requests: list[JSON] = field(default_factory=list)  # every alert request of the episode


def _closed_since(session: Session, ctx: WriteContext, since: datetime) -> list[JSON]:
    """Flags of the alert code closed (period.end) at or after `since`."""
    closed = search_all(session, ctx, "Flag", [("status", "inactive"), ("code", c.FLAG_CODE)])
    ends = ((f, x.parse_when((f.get("period") or {}).get("end"))) for f in closed)
    return [f for f, end in ends if end is not None and end >= since]


def _episodes(
    session: Session, ctx: WriteContext, closed_since: datetime | None = None
) -> list[_Episode]:
    flags = search_all(session, ctx, "Flag", [("status", "active"), ("code", c.FLAG_CODE)])
    if closed_since is not None:
        flags += _closed_since(session, ctx, closed_since)
    by_flag = {f"Flag/{f['id']}": _Episode(x.reference(f.get("subject")) or "", f) for f in flags}
    loose: list[_Episode] = []
    statuses = ",".join(sorted(c.OPEN_COMMUNICATION_STATUSES))
    open_requests = search_all(
        session,
        ctx,
        "CommunicationRequest",
        [("status", statuses), ("category", c.ALERT_CATEGORY_TOKEN)],
    )
    for request in open_requests:
        ref = _flag_ref(request)
        if ref in by_flag:
            continue  # collected with its Flag below
        # Without a stored Flag the request is shown on its own. A request whose Flag is stored
        # but no longer active is not: the worker revokes it when it sees the closed Flag.
        if ref is None or read_json(session, ctx, ref) is None:
            loose.append(_Episode(x.reference(request.get("subject")) or "", None, [request]))
    patients = {e.patient_ref for e in by_flag.values()}
    for patient_ref in sorted(patients):
        pid = patient_ref.removeprefix("Patient/")
        if not patient_ref.startswith("Patient/") or not pid:
            continue
        for request in search_all(
            session,
            ctx,
            "CommunicationRequest",
            [("patient", pid), ("category", c.ALERT_CATEGORY_TOKEN)],
        ):
            episode = by_flag.get(_flag_ref(request) or "")
            if episode is not None:
                episode.requests.append(request)
    return [*by_flag.values(), *loose]


def _evidence(
    session: Session, ctx: WriteContext, refs: Mapping[str, str]
) -> tuple[EvidenceItem, ...]:
    """The records an alert cites, read from the store; `refs` maps each reference to the
    alert's own words for it (used when the record has no display of its own)."""
    items: list[EvidenceItem] = []
    for ref, display in refs.items():
        resource = read_json(session, ctx, ref) if ref.split("/")[0] in _EVIDENCE_TYPES else None
        if resource is None:
            items.append(EvidenceItem(ref, display or ref, "", None, None, "not available"))
            continue
        when = x.clinical_date(resource)
        if resource.get("resourceType") == "Observation":
            value = x.observation_value(resource)
        else:
            value = x.concept_code(resource.get("clinicalStatus")) or None
        status = resource.get("status")
        note = f"status {status}" if status not in (None, "final") else None
        items.append(
            EvidenceItem(
                ref,
                x.concept_words(resource.get("code"))
                or display
                or x.concept_code(resource.get("code"))
                or ref,
                x.show_when(when),
                x.parse_when(when),
                value,
                note,
            )
        )
    items.sort(key=lambda e: (e.sort_when is None, e.sort_when or datetime.min, e.reference))
    return tuple(items)


_ACK_ACTIONS = frozenset({"acknowledge", "dismiss"})


def _audited_ack(session: Session, ctx: WriteContext, request_id: str) -> str | None:
    """ "by X at T" from the request's newest acknowledge (or dismiss) AuditEvent."""
    try:
        events = search_all(
            session, ctx, "AuditEvent", [("entity", f"CommunicationRequest/{request_id}")]
        )
    except FHIRError:  # a principal without AuditEvent.read: the note below still says it
        return None
    acks = [
        e
        for e in events
        if any(
            isinstance(s, Mapping) and s.get("code") in _ACK_ACTIONS for s in e.get("subtype") or ()
        )
    ]
    if not acks:
        return None
    newest = max(acks, key=lambda e: str(e.get("recorded") or ""))
    agents = [a for a in newest.get("agent") or () if isinstance(a, Mapping)]
    who = next(
        (
            str(a["who"].get("display"))
            for a in agents
            if isinstance(a.get("who"), Mapping) and a["who"].get("display")
        ),
        "",
    )
    return f"by {who or 'unknown'} at {x.show_when(newest.get('recorded'))}"


def _ack_text(request: Mapping[str, Any]) -> str:
    for note in reversed(request.get("note") or []):
        if isinstance(note, Mapping) and note.get("text") == c.ACK_NOTE_TEXT:
            who = note.get("authorString") or "a nurse"
            return f"by {who} at {x.show_when(note.get('time'))}"
    meta = request.get("meta") or {}
    return f"at {x.show_when(meta.get('lastUpdated'))}" if meta.get("lastUpdated") else ""


def _alert(
    session: Session,
    ctx: WriteContext,
    ep: _Episode,
    now: datetime,
    rules: RuleConfig,
    deadlines: Mapping[Priority, timedelta],
) -> Alert:
    flag = ep.flag or {}
    requests = sorted(ep.requests, key=lambda r: str(r.get("authoredOn") or ""))
    open_requests = [r for r in requests if r.get("status") in c.OPEN_COMMUNICATION_STATUSES]
    current = open_requests[-1] if open_requests else (requests[-1] if requests else {})
    priority = str(current.get("priority") or "")
    for ext in x.extensions(flag, c.ALERT_PRIORITY_URL):
        priority = priority or str(ext.get("valueCode") or "")
    authored = [t for t in (x.parse_when(r.get("authoredOn")) for r in requests) if t]
    raised = min(authored) if authored else x.parse_when((flag.get("period") or {}).get("start"))
    findings = tuple(
        Finding(
            x.coding_display(e.get("valueCodeableConcept")),
            x.concept_text(e.get("valueCodeableConcept")),
        )
        for e in x.extensions(flag, c.FINDING_EXTENSION_URL)
    ) or tuple(Finding(x.concept_text(rc), "") for rc in current.get("reasonCode") or ())
    red_flags = tuple(
        RedFlag(
            x.coding_display(e.get("valueCodeableConcept")),
            x.concept_text(e.get("valueCodeableConcept")),
        )
        for e in x.extensions(flag, c.RED_FLAG_EXTENSION_URL)
    )
    cited = [e.get("valueReference") for e in x.extensions(flag, c.FLAG_DETAIL_URL)]
    cited += list(current.get("reasonReference") or ())
    refs: dict[str, str] = {}
    for item in cited:
        ref = x.reference(item)
        if ref and isinstance(item, Mapping):
            refs[ref] = refs.get(ref) or str(item.get("display") or "")
    payload = [p for p in current.get("payload") or () if isinstance(p, Mapping)]
    summary = next((str(p["contentString"]) for p in payload if "contentString" in p), "")
    patient: JSON | None = None
    observations: list[JSON] = []
    if ep.patient_ref.startswith("Patient/"):
        patient = read_json(session, ctx, ep.patient_ref)
        pid = ep.patient_ref.removeprefix("Patient/")
        observations = search_all(
            session, ctx, "Observation", [("patient", pid), ("code", trend_search_codes(rules))]
        )
    series = trend_series(observations, rules)
    waiting = open_requests[-1] if open_requests else None
    deadline = triage.ack_deadline(waiting, deadlines) if waiting else None
    left, overdue = triage.deadline_text(deadline, now)
    snoozed = waiting is not None and waiting.get("status") == "on-hold"
    if flag and flag.get("status") != "active":
        status = "closed"
    elif waiting is None:
        status = "acknowledged"
    elif snoozed:
        status = "snoozed"
    elif triage.is_escalation(waiting) or triage.escalated(flag, waiting.get("id")):
        status = "escalated"
    else:
        status = "open"
    return Alert(
        patient_ref=ep.patient_ref or "unknown patient",
        patient_name=x.patient_name(patient),
        priority=priority or "routine",
        raised=raised,
        raised_text=x.show_when(raised.isoformat()) if raised else "",
        age_text=x.show_age(raised, now),
        flag_id=flag.get("id"),
        flag_version=_version(flag) if flag else None,
        request_id=open_requests[-1]["id"] if open_requests else None,
        request_version=_version(open_requests[-1]) if open_requests else None,
        acknowledged=None
        if open_requests or not requests
        else (_audited_ack(session, ctx, str(requests[-1].get("id"))) or _ack_text(requests[-1])),
        summary=summary,
        findings=findings,
        red_flags=red_flags,
        evidence=_evidence(session, ctx, refs),
        # Calcium and total ALP always; a further line (bone-specific ALP) when it has results.
        charts=tuple(chart(s) for i, s in enumerate(series) if i < 2 or s.points),
        mrn=triage.mrn(patient),
        age_sex=triage.age_sex(patient, now),
        status=status,
        snoozed_until=snooze_until(waiting) if snoozed and waiting else None,
        deadline=None if snoozed else deadline,
        deadline_text="" if snoozed else left,
        overdue=overdue and not snoozed,
        recipient=triage.recipient_text(current),
    )


def load_worklist(
    session: Session,
    ctx: WriteContext,
    now: datetime,
    rules: RuleConfig,
    deadlines: Mapping[Priority, timedelta] | None = None,
    *,
    closed_since: datetime | None = None,
) -> Worklist:
    """Every open episode as a page entry; `rules` is the rule set the alerts were raised with
    (its codes, units and limits draw the trends), `deadlines` the acknowledgement deadlines
    per priority; `closed_since` adds the episodes closed since then."""
    allowed = deadlines or DEFAULT_ACK_DEADLINES
    alerts = sorted(
        (
            _alert(session, ctx, ep, now, rules, allowed)
            for ep in _episodes(session, ctx, closed_since)
        ),
        key=lambda a: a.sort_key,
    )
    return Worklist(
        waiting=tuple(a for a in alerts if a.request_id and a.status != "closed"),
        acknowledged=tuple(a for a in alerts if a.status == "acknowledged"),
        closed=tuple(a for a in alerts if a.status == "closed"),
    )


@dataclass(frozen=True, slots=True)
class Filters:
    """The page's filters, from its query string (so they work without JavaScript)."""

    priority: str = ""  # one of contract.PRIORITY_ORDER, or "" for all
    status: str = ""  # one of triage.STATUS_FILTERS, or "" for everything open
    q: str = ""  # part of the patient's name or MRN

    @classmethod
    def of(cls, priority: str | None, status: str | None, q: str | None) -> Filters:
        return cls(
            priority if priority in c.PRIORITY_ORDER else "",
            status if status in triage.STATUS_FILTERS else "",
            " ".join((q or "").split())[:100],
        )

    @property
    def active(self) -> bool:
        return bool(self.priority or self.status or self.q)

    def keeps(self, alert: Alert) -> bool:
        if self.priority and alert.priority != self.priority:
            return False
        if self.status and alert.status != self.status:
            return False
        if self.q:
            needle = self.q.casefold()
            haystack = f"{alert.patient_name or ''} {alert.mrn or ''} {alert.patient_ref}"
            if needle not in haystack.casefold():
                return False
        return True

    def apply(self, worklist: Worklist) -> Worklist:
        """Only the matching alerts; "closed" shows the closed ones, any other status none of
        them."""
        return Worklist(
            waiting=tuple(a for a in worklist.waiting if self.keeps(a)),
            acknowledged=tuple(a for a in worklist.acknowledged if self.keeps(a)),
            closed=tuple(a for a in worklist.closed if self.keeps(a)),
        )
