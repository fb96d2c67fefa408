"""The alert life cycle (spec §6): when to open, update, escalate, retract and close an episode.

Two pure functions, called by `evaluate_patient` inside one transaction under a per-patient lock
(and by the dry run, with no stored state):

1. `close_if_ended(episode, current, now=...)`: a nurse may have closed the episode's Flag
   through the API. Then the episode is closed and its evidence becomes consumed.
2. `decide(assessment, episode, current, now=..., settings=..., config=..., new_id=...,
   retracted=...)`: compares the rule engine's assessment with what the open episode already
   said, and plans the writes. `evaluate_record` (workers/alerts/record.py) chains the two.

Neither reads the clock nor makes ids: `now` and `new_id` come in, so a decision can be replayed.
Re-deciding on unchanged data plans no writes, which makes a repeated task harmless.

Superseded requests: the episode keeps at most one open CommunicationRequest. When a new one is
needed (priority rose, a finding was added, or the evidence behind an open request was
withdrawn), every open request of the episode is revoked with a note naming its successor, and
the new request lists them in `replaces` (FHIR: "completed or terminated requests whose function
is taken by this new request"). Acknowledged (completed) requests are never changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from contract import FINDING_DISPLAY, OPEN_COMMUNICATION_STATUSES
from workers.alerts.fhir_output import (
    build_communication_request,
    build_flag,
    flag_with_period_end,
    revoked_communication_request,
)
from workers.alerts.plan import Plan, ResourceWrite, stored_version
from workers.alerts.reconcile import Reconciled, opening_content, reconcile
from workers.alerts.settings import AlertSettings
from workers.alerts.state import (
    CommunicationRecord,
    EpisodeFinding,
    EpisodeState,
    PriorityChange,
)
from workers.alerts.summary import communication_text
from workers.rules.config import RuleConfig
from workers.rules.model import Assessment, Priority, priority_rank

DEFAULT_SETTINGS = AlertSettings()

StoredResources = Iterable[Mapping[str, Any]]
_Key = tuple[str, str]
_OpenRequest = tuple[CommunicationRecord, Mapping[str, Any]]


def _index(current: StoredResources) -> dict[_Key, Mapping[str, Any]]:
    indexed: dict[_Key, Mapping[str, Any]] = {}
    for resource in current:
        kind, ident = resource.get("resourceType"), resource.get("id")
        if isinstance(kind, str) and isinstance(ident, str):
            indexed[(kind, ident)] = resource
    return indexed


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware")


def _open_requests(
    episode: EpisodeState, stored: Mapping[_Key, Mapping[str, Any]]
) -> list[_OpenRequest]:
    """The episode's requests that still ask someone to act (not completed, not revoked)."""
    found: list[_OpenRequest] = []
    for record in episode.communications:
        resource = stored.get(("CommunicationRequest", record.id))
        if resource is not None and resource.get("status") in OPEN_COMMUNICATION_STATUSES:
            found.append((record, resource))
    return found


def _revocations(
    requests: Sequence[_OpenRequest],
    *,
    status_reason: str,
    note: str,
    now: datetime,
    settings: AlertSettings,
) -> list[ResourceWrite]:
    return [
        ResourceWrite(
            "CommunicationRequest",
            record.id,
            revoked_communication_request(
                resource, status_reason=status_reason, note=note, now=now, settings=settings
            ),
            if_match=stored_version(resource),
        )
        for record, resource in requests
    ]


def _fallback_reason(findings: Sequence[EpisodeFinding], priority: Priority) -> str:
    """Used only when the assessment gave no priority reason: name what set the priority."""
    listed = ", ".join(f"{FINDING_DISPLAY[f.code].lower()} ({f.priority})" for f in findings)
    return f"{priority}: highest priority among {listed}"


def _record(state: EpisodeState, request_id: str, now: datetime) -> CommunicationRecord:
    return CommunicationRecord(
        id=request_id,
        priority=state.priority,
        finding_codes=state.finding_codes,
        evidence_refs=tuple(sorted(state.evidence_refs)),
        authored_at=now,
    )


def close_if_ended(
    episode: EpisodeState | None,
    current: StoredResources,
    *,
    now: datetime,
    settings: AlertSettings = DEFAULT_SETTINGS,
) -> Plan | None:
    """Close the open episode when its Flag is no longer `active`; None when it still is.

    The Flag is the episode's switch: a nurse sets it `inactive` (or `entered-in-error`) through
    the API. The Flag gets period.end if it has none. Requests still open are revoked with a note,
    so a closed concern leaves nothing on the team's worklist. A Flag that is no longer stored
    at all also ends the episode (there is nothing left to update).
    """
    _require_aware(now)
    if episode is None or episode.status != "open":
        return None
    stored = _index(current)
    flag = stored.get(("Flag", episode.flag_id))
    if flag is not None and flag.get("status") == "active":
        return None
    if flag is None:
        reason = f"{episode.flag_reference} is no longer stored"
    else:
        reason = f"{episode.flag_reference} was set to {flag.get('status')!s} outside the service"
    writes: list[ResourceWrite] = []
    if flag is not None:
        body = flag_with_period_end(flag, now=now)
        if body is not None:
            writes.append(
                ResourceWrite("Flag", episode.flag_id, body, if_match=stored_version(flag))
            )
    open_requests = _open_requests(episode, stored)
    writes += _revocations(
        open_requests,
        status_reason="concern episode closed",
        note=(
            f"Revoked by fhir-alerts: the concern episode was closed ({reason}) before this "
            "request was completed."
        ),
        now=now,
        settings=settings,
    )
    state = replace(episode, status="closed", closed_at=now, closed_reason=f"{reason}.")
    events = ("closed", "revoked") if open_requests else ("closed",)
    return Plan(tuple(writes), state, events)


def decide(
    assessment: Assessment,
    episode: EpisodeState | None,
    current: StoredResources,
    *,
    now: datetime,
    settings: AlertSettings = DEFAULT_SETTINGS,
    config: RuleConfig,
    new_id: Callable[[], str],
    retracted: frozenset[str],
) -> Plan:
    """Plan the writes that bring the patient's alerts in line with `assessment`.

    `episode` is the patient's open episode (a closed one counts as none), `current` the stored
    Flag and CommunicationRequests of that episode with meta.versionId. Call `close_if_ended`
    first: an open episode whose Flag is not `active` here is a caller error.

    `retracted`: the episode's evidence references whose stored record is now
    entered-in-error, refuted, cancelled or deleted (`withdrawal.retracted_evidence` over what
    the store holds). Only those (and evidence of a patient who no longer qualifies) are
    withdrawn; evidence that merely stopped firing (a newer normal result) stays on the alert
    for the nurse to judge. `config`: the rule set the assessment was made with.
    """
    _require_aware(now)
    if episode is not None and episode.status == "open":
        if episode.patient != assessment.patient:
            raise ValueError(f"episode of {episode.patient} given for {assessment.patient}")
        result = reconcile(episode, assessment, config, retracted)
        return _follow(assessment, episode, result, _index(current), now, settings, new_id, config)
    if not assessment.findings:
        return Plan()
    return _open(assessment, opening_content(assessment, config), now, settings, new_id, config)


def _open(
    assessment: Assessment,
    content: Reconciled,
    now: datetime,
    settings: AlertSettings,
    new_id: Callable[[], str],
    config: RuleConfig,
) -> Plan:
    assert content.priority is not None  # there is at least one finding
    episode_id, flag_id, request_id = new_id(), new_id(), new_id()
    reason = assessment.priority_reason or _fallback_reason(content.findings, content.priority)
    state = EpisodeState(
        id=episode_id,
        patient=assessment.patient,
        status="open",
        opened_at=now,
        flag_id=flag_id,
        priority=content.priority,
        findings=content.findings,
        red_flags=content.red_flags,
        communications=(),
        priority_history=(PriorityChange(now, None, content.priority, reason),),
        ruleset_version=assessment.ruleset_version,
    )
    record = _record(state, request_id, now)
    state = replace(state, communications=(record,))
    text = communication_text(
        state, why=("New concern: this episode has just opened.",), config=config
    )
    return Plan(
        writes=(
            ResourceWrite("Flag", flag_id, build_flag(state, settings=settings)),
            ResourceWrite(
                "CommunicationRequest",
                request_id,
                build_communication_request(
                    state, record, text=text, replaces=(), settings=settings
                ),
            ),
        ),
        episode=state,
        events=("opened",),
    )


def _follow(
    assessment: Assessment,
    episode: EpisodeState,
    result: Reconciled,
    stored: Mapping[_Key, Mapping[str, Any]],
    now: datetime,
    settings: AlertSettings,
    new_id: Callable[[], str],
    config: RuleConfig,
) -> Plan:
    flag = stored.get(("Flag", episode.flag_id))
    if flag is None or flag.get("status") != "active":
        raise ValueError(
            f"{episode.flag_reference} is not active or not given: call close_if_ended first"
        )
    if not result.withdrawals and (result.findings, result.red_flags, result.priority) == (
        episode.findings,
        episode.red_flags,
        episode.priority,
    ):
        return Plan(episode=episode, events=("unchanged",))
    if result.priority is None:
        return _retract_all(assessment, episode, result, flag, stored, now, settings)
    return _update(assessment, episode, result, flag, stored, now, settings, new_id, config)


def _withdrawn_text(result: Reconciled) -> str:
    return "; ".join(w.why for w in result.withdrawals)


def _retract_all(
    assessment: Assessment,
    episode: EpisodeState,
    result: Reconciled,
    flag: Mapping[str, Any],
    stored: Mapping[_Key, Mapping[str, Any]],
    now: datetime,
    settings: AlertSettings,
) -> Plan:
    """Nothing is left: the Flag becomes inactive and every open request is revoked."""
    reason = f"All evidence for this alert was withdrawn: {_withdrawn_text(result)}."
    state = replace(
        episode,
        status="closed",
        closed_at=now,
        closed_reason=reason,
        findings=(),
        red_flags=(),
        ruleset_version=assessment.ruleset_version,
    )
    open_requests = _open_requests(episode, stored)
    writes = [
        ResourceWrite(
            "Flag",
            episode.flag_id,
            build_flag(state, settings=settings, stored=flag),
            if_match=stored_version(flag),
        ),
        *_revocations(
            open_requests,
            status_reason="evidence withdrawn",
            note=f"Revoked by fhir-alerts. {reason}",
            now=now,
            settings=settings,
        ),
    ]
    events = ("retracted", "closed", "revoked") if open_requests else ("retracted", "closed")
    return Plan(tuple(writes), state, events)


def _update(
    assessment: Assessment,
    episode: EpisodeState,
    result: Reconciled,
    flag: Mapping[str, Any],
    stored: Mapping[_Key, Mapping[str, Any]],
    now: datetime,
    settings: AlertSettings,
    new_id: Callable[[], str],
    config: RuleConfig,
) -> Plan:
    """Something changed and something remains: update the Flag, and notify when it matters."""
    assert result.priority is not None
    old, new = episode.priority, result.priority
    events: list[str] = []
    why: list[str] = []
    history = list(episode.priority_history)

    if priority_rank(new) > priority_rank(old):
        reason = assessment.priority_reason or _fallback_reason(result.findings, new)
        history.append(PriorityChange(now, old, new, reason))
        events.append("escalated")
        why.append(f"Priority raised from {old} to {new}: {reason}")
    added = [f.code for f in result.findings if f.code not in episode.finding_codes]
    if added:
        events.append("finding-added")
        why.append("New finding: " + ", ".join(FINDING_DISPLAY[c] for c in added) + ".")
    old_refs = {f.code: f.evidence_refs for f in episode.findings}
    if any(f.evidence_refs - old_refs[f.code] for f in result.findings if f.code in old_refs):
        events.append("evidence-added")
    if {r.code for r in result.red_flags} - {r.code for r in episode.red_flags}:
        events.append("red-flag-added")

    stale: list[_OpenRequest] = []
    open_requests = _open_requests(episode, stored)
    if result.withdrawals:
        events.append("retracted")
        withdrawn = _withdrawn_text(result)
        if priority_rank(new) < priority_rank(old):
            reason = f"Lowered from {old} to {new} after evidence was withdrawn: {withdrawn}."
            if assessment.priority_reason:
                reason += f" Now: {assessment.priority_reason}"
            history.append(PriorityChange(now, old, new, reason))
            events.append("priority-lowered")
        withdrawn_refs = {w.evidence.reference for w in result.withdrawals}
        stale = [r for r in open_requests if withdrawn_refs & set(r[0].evidence_refs)]
        if stale:
            why.append(f"Evidence behind the earlier request was withdrawn: {withdrawn}.")
            if priority_rank(new) < priority_rank(old):
                why.append(f"Priority lowered from {old} to {new}.")

    state = replace(
        episode,
        findings=result.findings,
        red_flags=result.red_flags,
        priority=new,
        priority_history=tuple(history),
        ruleset_version=assessment.ruleset_version,
    )
    creates: list[ResourceWrite] = []
    revocations: list[ResourceWrite] = []
    if priority_rank(new) > priority_rank(old) or added or stale:
        record = _record(state, new_id(), now)
        state = replace(state, communications=(*episode.communications, record))
        replaced = [r[0].reference for r in open_requests]
        text = communication_text(
            state, why=(*why, *(f"Replaces {ref}." for ref in replaced)), config=config
        )
        creates.append(
            ResourceWrite(
                "CommunicationRequest",
                record.id,
                build_communication_request(
                    state, record, text=text, replaces=replaced, settings=settings
                ),
            )
        )
        revocations = _revocations(
            open_requests,
            status_reason=f"superseded by {record.reference}",
            note=f"Superseded by {record.reference}. " + " ".join(why),
            now=now,
            settings=settings,
        )
        if revocations:
            events.append("superseded")
    flag_write = ResourceWrite(
        "Flag",
        episode.flag_id,
        build_flag(state, settings=settings, stored=flag),
        if_match=stored_version(flag),
    )
    return Plan((flag_write, *revocations, *creates), state, tuple(events))
