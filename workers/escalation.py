"""The deadline sweep: escalate overdue alerts, wake snoozed ones, withdraw moot escalations.

Run periodically: by Celery beat on a broker deployment (`workers.tasks.sweep_deadlines`), by a
thread of the API process on the embedded default (`DeadlineSweeper`, started by
`workers.embedded.build_app`). Both call `sweep`, which joins the store to the pure decisions
in `workers/alerts/escalation.py` and `workers/alerts/snooze.py`.

Safe with several processes: each patient is handled in its own transaction under the same
per-patient row lock the evaluation takes (service/store/episodes.py), so a sweep and an
evaluation, or two sweeps, never interleave on one patient; and an escalation's id is derived
from the missed request and its deadline, so the second sweep finds it and does nothing.
Writes go through `store.save`, whose write hook records Subscription notifications.

The clock is a parameter (`now`): tests drive an alert past its deadline without waiting.
Nothing here runs inside an evaluation, `$evaluate` or a replay; evaluations never escalate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from contract import OPEN_COMMUNICATION_STATUSES
from contract.deadlines import deadline_of
from service import audit
from service.config import Settings
from service.polling import PollingThread
from service.store import episodes as episode_store
from service.store import resources as store
from service.store.db import transaction
from service.store.errors import Conflict, VersionMismatch
from service.store.models import Resource
from workers.alerts import AlertSettings, EpisodeState, ResourceWrite
from workers.alerts.escalation import (
    EscalationPolicy,
    decide_acknowledged_through_escalation,
    decide_escalation,
    decide_escalation_withdrawal,
    escalated_request_reference,
    escalation_id,
    is_escalation,
)
from workers.alerts.snooze import decide_wake
from workers.evaluation import alert_settings

log = logging.getLogger(__name__)


@dataclass(slots=True)
class SweepOutcome:
    """What one sweep wrote, by reference (ids only: no patient data in logs)."""

    escalated: list[str] = field(default_factory=list)  # the escalation requests made
    withdrawn: list[str] = field(default_factory=list)  # escalations revoked as moot
    woken: list[str] = field(default_factory=list)  # snoozed requests made active again
    # missed requests completed because their escalation was acknowledged
    acknowledged: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # patients left for the next pass

    @property
    def written(self) -> int:
        return len(self.escalated) + len(self.withdrawn) + len(self.woken) + len(self.acknowledged)


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def escalation_policy(settings: Settings, session: Session | None = None) -> EscalationPolicy:
    """Deadlines from `ALERTS_ACK_DEADLINES`; recipients from `ALERTS_ESCALATION_RECIPIENT`,
    else the oncology team (its stored CareTeam's members, when a session is given)."""
    from workers.routing import recipients

    target = settings.escalation_recipient or settings.oncology_team
    found = recipients(session, target) if session is not None else (target,)
    return EscalationPolicy(deadlines=settings.ack_deadline_map, recipients=found)


def _patients_with_open_requests(session: Session) -> list[str]:
    rows = session.scalars(
        select(Resource.patient_id)
        .where(
            Resource.type == "CommunicationRequest",
            Resource.status.in_(sorted(OPEN_COMMUNICATION_STATUSES)),
            Resource.deleted.is_(False),
            Resource.patient_id.is_not(None),
        )
        .distinct()
    )
    return sorted(p for p in rows if p)


def _open_requests(session: Session, patient_id: str) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Resource.id).where(
            Resource.type == "CommunicationRequest",
            Resource.patient_id == patient_id,
            Resource.status.in_(sorted(OPEN_COMMUNICATION_STATUSES)),
            Resource.deleted.is_(False),
        )
    )
    found = store.read_many(session, "CommunicationRequest", sorted(rows))
    return [found[i].json() for i in sorted(found)]


def _read(session: Session, resource_type: str, resource_id: str) -> dict[str, Any] | None:
    stored = store.read(session, resource_type, resource_id)
    return None if stored is None or stored.deleted else stored.json()


def _save(session: Session, write: ResourceWrite) -> str:
    stored, _ = store.save(
        session,
        resource_type=write.resource_type,
        resource_id=write.id,
        resource=write.resource,
        if_match=write.if_match,
    )
    if write.is_create:  # an escalation: its AuditEvent, agent the service (service/audit.py)
        audit.record(
            session,
            agent=audit.SERVICE_AGENT,
            resource_type=write.resource_type,
            resource_id=write.id,
            version=stored.version_id,
            previous=None,
            new=write.resource,
            patient=stored.patient_id,
        )
    return stored.location


def sweep_patient(
    session: Session,
    patient_id: str,
    *,
    policy: EscalationPolicy,
    settings: AlertSettings,
    now: datetime,
    outcome: SweepOutcome,
) -> None:
    """One patient's open requests, under the patient's evaluation lock."""
    episode_store.lock_patient(session, patient_id)
    state = episode_store.load_open(session, patient_id)
    episode = EpisodeState.from_json(state) if state is not None else None
    alert_ids = {c.id for c in episode.communications} if episode is not None else set()
    for request in _open_requests(session, patient_id):
        rid = str(request["id"])
        if is_escalation(request):
            ref = escalated_request_reference(request)
            original = (
                _read(session, "CommunicationRequest", ref.partition("/")[2]) if ref else None
            )
            withdrawal = decide_escalation_withdrawal(request, original, now=now, settings=settings)
            if withdrawal is not None:
                _save(session, withdrawal)
                outcome.withdrawn.append(withdrawal.reference)
            continue
        if rid not in alert_ids or episode is None:
            continue  # not an alert of an open episode (a foreign request, a closed episode)
        wake = decide_wake(request, now=now, settings=settings)
        if wake is not None:
            _save(session, wake)
            outcome.woken.append(wake.reference)
            request = _read(session, "CommunicationRequest", rid) or request
        deadline = deadline_of(request, policy.deadlines)
        if deadline is None or now < deadline:
            continue
        stored_escalation = _read(session, "CommunicationRequest", escalation_id(rid, deadline))
        answered = decide_acknowledged_through_escalation(
            request, stored_escalation, now=now, settings=settings
        )
        if answered is not None:
            _save(session, answered)
            outcome.acknowledged.append(answered.reference)
            continue
        plan = decide_escalation(
            request,
            _read(session, "Flag", episode.flag_id),
            stored_escalation=stored_escalation,
            policy=policy,
            now=now,
            settings=settings,
        )
        if plan is None:
            continue
        for write in plan.writes:
            _save(session, write)
        outcome.escalated.extend(w.reference for w in plan.writes if w.is_create)


def sweep(
    factory: sessionmaker[Session], *, settings: Settings, now: datetime | None = None
) -> SweepOutcome:
    """One pass over every patient with an open request; `now` defaults to the real clock."""
    moment = _aware(now or datetime.now(UTC))
    alerts = alert_settings(settings)
    outcome = SweepOutcome()
    with transaction(factory) as session:
        patients = _patients_with_open_requests(session)
        policy = escalation_policy(settings, session)
    for patient_id in patients:
        try:
            with transaction(factory) as session:
                sweep_patient(
                    session,
                    patient_id,
                    policy=policy,
                    settings=alerts,
                    now=moment,
                    outcome=outcome,
                )
        except (VersionMismatch, Conflict):
            # A nurse (or another process) changed the alert meanwhile: the next pass re-reads.
            outcome.failed.append(patient_id)
            log.info("deadline sweep of Patient/%s met a concurrent change; retried", patient_id)
    if outcome.written:
        log.info(
            "deadline sweep: escalated %s; withdrew %s; woke %s; completed %s",
            ",".join(outcome.escalated) or "nothing",
            ",".join(outcome.withdrawn) or "nothing",
            ",".join(outcome.woken) or "nothing",
            ",".join(outcome.acknowledged) or "nothing",
        )
    return outcome


class DeadlineSweeper(PollingThread):
    """The embedded equivalent of the Celery beat schedule: `sweep` every interval."""

    def __init__(self, factory: sessionmaker[Session], settings: Settings) -> None:
        super().__init__(name="deadline-sweep", interval=settings.escalation_interval_seconds)
        self._factory = factory
        self._settings = settings

    def run_once(self) -> int:
        sweep(self._factory, settings=self._settings)
        return 0  # always wait a full interval: the sweep is periodic, not a queue
