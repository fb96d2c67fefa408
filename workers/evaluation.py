"""Evaluate one patient: read, decide, save. The only place that joins the store to the pure
rule engine and episode logic: it reads a `PatientRecord` and the patient's records, calls
`evaluate_record` (the same function the alert unit tests call) and applies its Plans.

Everything happens in one transaction under the patient's row lock, so two workers given the
same patient run one after the other, and the second finds nothing to change. Re-running after
a crash, or out of order, gives the same alerts: the result depends only on stored state.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from service import metrics
from service.config import Settings
from service.fhir.registry import EVALUATED_TYPES
from service.store import episodes as episode_store
from service.store import outbox, wakeups
from service.store import resources as store
from service.store.db import transaction
from service.store.episodes import LockedPatient
from service.store.errors import VersionMismatch
from service.store.record_batches import load_records_many
from workers.alerts import (
    AlertSettings,
    EpisodeState,
    PatientRecord,
    Plan,
    engine_assessment,
    evaluate_record,
)
from workers.routing import recipients
from workers.rules import load_config

log = logging.getLogger(__name__)


class VersionConflict(Exception):
    """A nurse changed an alert while we were deciding; the task retries and re-reads."""


@dataclass(frozen=True, slots=True)
class Outcome:
    patient_id: str
    events: tuple[str, ...]
    written: tuple[str, ...]  # "Flag/x/_history/2" ...
    requested_at: datetime | None = None  # oldest write covered (naive UTC), for metrics


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def alert_settings(settings: Settings) -> AlertSettings:
    return AlertSettings(oncology_team=settings.oncology_team)


def _current_resources(session: Session, episode: EpisodeState | None) -> list[dict[str, Any]]:
    """The episode's Flag and CommunicationRequests as stored now (a nurse may have changed
    them since the last evaluation)."""
    if episode is None:
        return []
    out: dict[str, dict[str, Any]] = {}
    flag = store.read(session, "Flag", episode.flag_id)
    if flag is not None and not flag.deleted:
        out[f"Flag/{episode.flag_id}"] = flag.json()
    requests = store.read_many(
        session, "CommunicationRequest", [c.id for c in episode.communications]
    )
    for rid, stored in requests.items():
        out[f"CommunicationRequest/{rid}"] = stored.json()
    return [out[k] for k in sorted(out)]


def _apply(session: Session, plan: Plan, written: list[str]) -> None:
    """The plan's writes in order; each run of creates (a new alert's Flag and its
    CommunicationRequest) as one multi-row insert per table. A create's id is freshly
    generated, so it is not looked up first; should it exist after all, the insert fails
    (`Conflict`) rather than overwriting."""
    creates: list[tuple[str, str, dict[str, Any]]] = []

    def flush_creates() -> None:
        written.extend(s.location for s in store.save_new_many(session, creates))
        creates.clear()

    for w in plan.writes:
        if w.is_create:
            creates.append((w.resource_type, w.id, w.resource))
            continue
        flush_creates()
        try:
            stored, _ = store.save(
                session,
                resource_type=w.resource_type,
                resource_id=w.id,
                resource=w.resource,
                if_match=w.if_match,
            )
        except VersionMismatch:
            raise VersionConflict(f"{w.resource_type}/{w.id}") from None
        written.append(stored.location)
    flush_creates()
    if plan.episode is not None:
        ep = plan.episode
        episode_store.save_state(
            session,
            episode_id=ep.id,
            patient_id=ep.patient.removeprefix("Patient/"),
            status=ep.status,
            state=ep.to_json(),
        )


def _stored_evidence(session: Session, episode: EpisodeState | None) -> dict[str, dict[str, Any]]:
    """The open episode's evidence as stored now; deleted records are absent (the withdrawal
    policy, workers/alerts/withdrawal.py, judges what this means)."""
    if episode is None:
        return {}
    by_type: dict[str, list[str]] = {}
    for ref in episode.evidence_refs:
        rtype, _, rid = ref.partition("/")
        by_type.setdefault(rtype, []).append(rid)
    out: dict[str, dict[str, Any]] = {}
    for rtype, ids in by_type.items():
        for rid, stored in store.read_many(session, rtype, ids).items():
            out[f"{rtype}/{rid}"] = stored.json()
    return out


def read_record(
    session: Session, patient_id: str, batch: BatchReads | None = None
) -> PatientRecord:
    """What the store says about the patient's alerts (under the patient's lock): from what
    `batch` read, or read now for this patient alone."""
    if batch is None:
        opened, closed_by_patient = episode_store.load_states(session, [patient_id])
        state = opened.get(patient_id)
        closed = closed_by_patient[patient_id]
    else:
        state = batch.open_states.get(patient_id)
        closed = batch.closed_states.get(patient_id, [])
    episode = EpisodeState.from_json(state) if state is not None else None
    consumed: set[str] = set()
    for closed_state in closed:
        consumed |= EpisodeState.from_json(closed_state).evidence_refs
    return PatientRecord(
        episode=episode,
        alert_resources=_current_resources(session, episode),
        consumed=frozenset(consumed),
        evidence=_stored_evidence(session, episode),
    )


@dataclass(frozen=True, slots=True)
class BatchReads:
    """What an evaluation read for all its patients at once, under all their locks, in a
    handful of statements whatever the number of patients. Every evaluation goes through it,
    one patient being a batch of one (`evaluate_patient`): one code path, and Core statements
    instead of the ORM's per-object bookkeeping, which was most of the worker's CPU."""

    locks: Mapping[str, LockedPatient]
    open_states: Mapping[str, dict[str, Any]]
    closed_states: Mapping[str, list[dict[str, Any]]]
    records: Mapping[str, list[dict[str, Any]]]
    recipients: tuple[str, ...]
    now: datetime  # the evaluation's time (aware UTC); a patient's `asOf` overrides it

    @classmethod
    def read(
        cls,
        session: Session,
        patient_ids: Sequence[str],
        *,
        settings: Settings,
        now: datetime | None = None,
    ) -> BatchReads:
        """`now` None: the real clock, read once the locks are held, so an evaluation that
        waited for another one on the same patient judges at the time it actually reads."""
        locks = episode_store.lock_patients(session, patient_ids)
        clock = _aware(now or datetime.now(UTC))
        opened, closed = episode_store.load_states(session, patient_ids)
        lookback = timedelta(days=load_config(settings.ruleset).lookback_days)
        since = {pid: _naive(_clock(lock, clock) - lookback) for pid, lock in locks.items()}
        return cls(
            locks=locks,
            open_states=opened,
            closed_states=closed,
            records=load_records_many(session, since, types=EVALUATED_TYPES),
            recipients=recipients(session, settings.oncology_team),
            now=clock,
        )


def _clock(lock: LockedPatient, now: datetime) -> datetime:
    """The patient's evaluation time: its replay `asOf` if it has one, else now."""
    return _aware(lock.as_of) if lock.as_of is not None else now


def evaluate_in_session(
    session: Session, patient_id: str, *, settings: Settings, batch: BatchReads
) -> Outcome:
    """One patient's evaluation inside the caller's transaction, from what `batch` read under
    the patient's lock. The outbox rows and the lock's `evaluated_at` are left to the caller,
    in one statement for the whole batch (`_evaluate`); `requested_at` is filled in there."""
    if settings.evaluation_delay_seconds:
        time.sleep(settings.evaluation_delay_seconds)
    now = batch.now
    at = _clock(batch.locks[patient_id], now)
    config = load_config(settings.ruleset)
    record = read_record(session, patient_id, batch)
    decision = evaluate_record(
        record,
        engine_assessment(f"Patient/{patient_id}", batch.records[patient_id], at, config),
        now=now,
        config=config,
        settings=replace(alert_settings(settings), recipients=batch.recipients),
        new_id=lambda: str(uuid.uuid4()),
    )
    for note in decision.assessment.notes:
        log.info("Patient/%s evaluation note: %s", patient_id, note)
    events: list[str] = []
    written: list[str] = []
    episode = record.episode
    if decision.closing is not None:
        _apply(session, decision.closing, written)
        events.extend(decision.closing.events)
        episode = None
    plan = decision.plan
    if plan.writes or plan.episode != episode:
        _apply(session, plan, written)
    events.extend(plan.events)
    return Outcome(patient_id, tuple(events), tuple(written))


def _evaluate(
    session: Session,
    uptos: Mapping[str, int | None],
    *,
    settings: Settings,
    now: datetime | None,
    hands_out: bool,
) -> list[Outcome]:
    """The one evaluation path, for one patient or many: lock and read them all at once,
    decide and write per patient, then complete the outbox rows each evaluation covered and
    mark the locks evaluated, one statement each for the whole batch. `hands_out`: the
    caller sends the notifications recorded here itself (see `evaluate_patient`)."""
    if hands_out:
        wakeups.local_only(session, wakeups.DELIVERIES)
    ids = sorted(uptos)
    batch = BatchReads.read(session, ids, settings=settings, now=now)
    outcomes = [evaluate_in_session(session, pid, settings=settings, batch=batch) for pid in ids]
    requested = outbox.complete_many(session, uptos)
    episode_store.mark_evaluated(session, ids, _naive(batch.now))
    return [replace(o, requested_at=requested.get(o.patient_id)) for o in outcomes]


def evaluate_patient(
    factory: sessionmaker[Session],
    patient_id: str,
    *,
    settings: Settings,
    upto: int | None = None,
    now: datetime | None = None,
    hands_out: bool = False,
) -> Outcome:
    """One patient in its own transaction: a batch of one, through the same statements as
    `evaluate_patients` (the fallback for a failed batch, and the relay's single hand-off).
    `hands_out`: the caller sends the notifications this records itself, right after the
    commit (a Celery worker), so other processes are not woken for them."""
    started = time.perf_counter()
    with transaction(factory) as session:
        [outcome] = _evaluate(
            session, {patient_id: upto}, settings=settings, now=now, hands_out=hands_out
        )
    _report(outcome, time.perf_counter() - started)
    return outcome


def _report(outcome: Outcome, seconds: float) -> None:
    metrics.evaluated(  # after the commit: the alert is visible from here on
        seconds,
        alerted=bool(outcome.written),
        requested_at=outcome.requested_at,
    )
    log.info(
        "evaluated Patient/%s: %s; wrote %s",
        outcome.patient_id,
        ",".join(outcome.events) or "nothing",
        ",".join(outcome.written) or "nothing",
    )


def evaluate_patients(
    factory: sessionmaker[Session],
    items: Sequence[tuple[str, int | None]],
    *,
    settings: Settings,
    now: datetime | None = None,
    hands_out: bool = False,
) -> list[Outcome]:
    """Several patients in one transaction: one lock statement, one read per table for all of
    them, one outbox completion, one commit; the decisions and writes stay per patient and are
    the same as `evaluate_patient`'s. Why: an evaluation is a dozen small statements, and under
    load (a Bundle touching 100 patients, hundreds of writes a second) their fixed cost, not
    the rules, was most of the worker's time.

    All or nothing: if anything fails (a nurse's concurrent edit, a database error), the batch
    rolls back and the caller evaluates the patients one by one (`evaluate_patient`), so one
    patient's trouble never holds up the others."""
    uptos = dict(items)
    if len(uptos) == 1:
        ((patient_id, upto),) = uptos.items()
        return [
            evaluate_patient(
                factory, patient_id, settings=settings, upto=upto, now=now, hands_out=hands_out
            )
        ]
    started = time.perf_counter()
    with transaction(factory) as session:
        done = _evaluate(session, uptos, settings=settings, now=now, hands_out=hands_out)
    seconds = (time.perf_counter() - started) / len(done)
    for outcome in done:
        _report(outcome, seconds)
    return done
