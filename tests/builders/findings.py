"""Hand-built assessments, an in-memory resource store and the worker's own evaluation step.

The alert logic is tested without the rule engine: assessments are built here by hand, exactly
as the engine would return them. `Patient.evaluate` reads a `PatientRecord` from the in-memory
store the way the worker reads one from the database and calls the worker's `evaluate_record`
(close if the Flag ended, assess, withdraw, decide), then applies the writes guarded by
versionId and saves the episode, so the life cycle is walked on the production path.

Evidence is withdrawn the way it is in production: its stored record is entered-in-error,
refuted, cancelled or deleted (`FakeStore.withdraw`, `FakeStore.delete`). An assessment that
simply stops citing a record withdraws nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias

from tests.builders import VER_STATUS
from workers.alerts import AlertSettings, EpisodeState, PatientRecord, Plan, evaluate_record
from workers.rules import load_config
from workers.rules.model import (
    PRIORITY_ORDER,
    Assessment,
    Evidence,
    Finding,
    Priority,
    RedFlag,
    priority_rank,
)

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
PATIENT = "Patient/p1"
RULESET = "v1"
SETTINGS = AlertSettings()
CONFIG = load_config()  # the shipped rule set, as the worker loads it by default


def day(n: float) -> datetime:
    """T0 plus n days: scenario dates read as offsets."""
    return T0 + timedelta(days=n)


class Ids:
    """Deterministic stand-in for the task's uuid factory."""

    def __init__(self, prefix: str = "id") -> None:
        self.prefix = prefix
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"{self.prefix}-{self.n}"


# --- findings, as the rule engine would return them ---------------------------------------------


def back_pain(ref: str = "Condition/bp1", date: datetime = T0) -> Finding:
    evidence = Evidence(ref, date, "BACK_PAIN", f"backache recorded on {date:%Y-%m-%d}")
    return Finding(
        code="new-back-pain",
        priority="urgent",
        date=date,
        evidence=(evidence,),
        reason=f"Back pain recorded on {date:%Y-%m-%d}; no back pain in the year before.",
    )


def mscc(ref: str = "Condition/neuro1", date: datetime = T0) -> Finding:
    evidence = Evidence(ref, date, "NEURO_DEFICIT", f"difficulty walking on {date:%Y-%m-%d}")
    return Finding(
        code="suspected-mscc",
        priority="stat",
        date=date,
        evidence=(evidence,),
        reason=f"Neurological deficit (difficulty walking) on {date:%Y-%m-%d}.",
    )


_GRADE_PRIORITY: dict[int, Priority] = {1: "urgent", 2: "asap", 3: "stat", 4: "stat"}


def hypercalcemia(
    ref: str = "Observation/ca1", date: datetime = T0, value: float = 11.8, grade: int = 2
) -> Finding:
    evidence = Evidence(
        ref, date, "CALCIUM_TOTAL", f"calcium {value} mg/dL on {date:%Y-%m-%d}", value, "mg/dL"
    )
    albumin = Evidence(
        "Observation/alb1", date, "ALBUMIN", f"albumin 3.9 g/dL on {date:%Y-%m-%d}", 3.9, "g/dL"
    )
    return Finding(
        code="hypercalcemia",
        priority=_GRADE_PRIORITY[grade],
        date=date,
        evidence=(evidence,),
        reason=f"Corrected calcium {value} mg/dL above the upper limit 10.5 mg/dL (grade {grade}).",
        supporting=(albumin,),
        grade=grade,
        value=value,
        unit="mg/dL",
        baseline=9.6,
        upper_limit=10.5,
    )


def rising_calcium(ref: str = "Observation/ca2", date: datetime = T0) -> Finding:
    evidence = Evidence(
        ref, date, "CALCIUM_TOTAL", f"calcium 10.4 mg/dL on {date:%Y-%m-%d}", 10.4, "mg/dL"
    )
    return Finding(
        code="rising-calcium",
        priority="routine",
        date=date,
        evidence=(evidence,),
        reason="Calcium 10.4 mg/dL is 13% above the baseline 9.2 mg/dL.",
        value=10.4,
        unit="mg/dL",
        baseline=9.2,
        upper_limit=10.5,
    )


def rising_alp(ref: str = "Observation/alp1", date: datetime = T0, value: float = 190.0) -> Finding:
    priority: Priority = "urgent" if value > 2.5 * 147 else "routine"
    evidence = Evidence(ref, date, "ALP", f"ALP {value:g} U/L on {date:%Y-%m-%d}", value, "U/L")
    return Finding(
        code="rising-alp",
        priority=priority,
        date=date,
        evidence=(evidence,),
        reason=f"ALP {value:g} U/L above the upper limit 147 U/L and 1.4 × the baseline.",
        value=value,
        unit="U/L",
        baseline=135.0,
        upper_limit=147.0,
        comparator=None,
    )


def weight_loss(ref: str = "Condition/wl1", date: datetime = T0) -> RedFlag:
    return RedFlag(
        "weight-loss",
        f"Unexplained weight loss recorded on {date:%Y-%m-%d}.",
        (Evidence(ref, date, "WEIGHT_LOSS", "weight loss"),),
    )


def high_spine(ref: str = "Condition/bp1", date: datetime = T0) -> RedFlag:
    return RedFlag(
        "high-spine-back-pain",
        "Back pain in the upper back (thoracic spine).",
        (Evidence(ref, date, "BACK_PAIN_HIGH_SPINE", "upper back pain"),),
    )


_GROUPS = ({"new-back-pain"}, {"hypercalcemia", "rising-calcium"}, {"rising-alp"})


def combined(findings: Iterable[Finding]) -> Priority | None:
    """The rule engine's overall priority (spec §5 combination rule), re-stated for tests."""
    findings = tuple(findings)
    if not findings:
        return None
    top = max(priority_rank(f.priority) for f in findings)
    codes = {f.code for f in findings}
    if sum(1 for g in _GROUPS if g & codes) >= 2 and top < priority_rank("asap"):
        top += 1
    return PRIORITY_ORDER[top]


def assess(
    *findings: Finding,
    at: datetime = T0,
    red_flags: Iterable[RedFlag] = (),
    consumed: Iterable[str] = (),
    eligible: bool = True,
    known_bone_metastasis: bool = False,
    patient: str = PATIENT,
) -> Assessment:
    """An Assessment as the engine returns it; consumed evidence never triggers a finding."""
    spent = set(consumed)
    kept = tuple(
        sorted(
            (f for f in findings if not any(e.reference in spent for e in f.evidence)),
            key=lambda f: f.code,
        )
    )
    priority = combined(kept)
    reason = ""
    if priority is not None:
        reason = f"{priority}: " + "; ".join(f"{f.code} ({f.priority})" for f in kept)
    return Assessment(
        patient=patient,
        at=at,
        ruleset_version=RULESET,
        eligible=eligible,
        known_bone_metastasis=known_bone_metastasis,
        findings=kept,
        red_flags=tuple(red_flags),
        priority=priority,
        priority_reason=reason,
    )


# --- the store and the task -------------------------------------------------------------------


def clinical_record(reference: str, status: str | None = None) -> dict[str, Any]:
    """A stored Condition or Observation as the rules cite it: confirmed / final unless
    `status` says otherwise (a verificationStatus code for a Condition, else a status)."""
    kind, ident = reference.split("/", 1)
    if kind == "Condition":
        code = status or "confirmed"
        return {
            "resourceType": kind,
            "id": ident,
            "verificationStatus": {"coding": [{"system": VER_STATUS, "code": code}]},
        }
    return {"resourceType": kind, "id": ident, "status": status or "final"}


class FakeStore:
    """Resources by (type, id) with meta.versionId, enforcing the writes' version guards, and
    the patient's clinical records (by reference) that assessments cite."""

    def __init__(self) -> None:
        self.resources: dict[tuple[str, str], dict[str, Any]] = {}
        self.versions: list[dict[str, Any]] = []  # every version ever written, in order
        self.clinical: dict[str, dict[str, Any]] = {}
        self.clock = T0

    def cited(self, assessment: Assessment) -> None:
        """The records an assessment cites are stored (the engine only reads stored ones)."""
        for finding in assessment.findings:
            for evidence in (*finding.evidence, *finding.supporting):
                self.clinical.setdefault(evidence.reference, clinical_record(evidence.reference))

    def withdraw(self, reference: str, status: str = "entered-in-error") -> None:
        """A client corrects a record: entered-in-error (or refuted, cancelled)."""
        self.clinical[reference] = clinical_record(reference, status)

    def delete(self, reference: str) -> None:
        self.clinical.pop(reference, None)

    def evidence(self, episode: EpisodeState | None) -> dict[str, dict[str, Any]]:
        """What the worker reads: the episode's evidence as stored now (deleted: absent)."""
        if episode is None:
            return {}
        return {r: self.clinical[r] for r in sorted(episode.evidence_refs) if r in self.clinical}

    def _put(self, body: dict[str, Any], version: int) -> None:
        stored = copy.deepcopy(body)
        stored["meta"] = {
            **stored.get("meta", {}),
            "versionId": str(version),
            "lastUpdated": self.clock.isoformat(),
        }
        self.resources[(stored["resourceType"], stored["id"])] = stored
        self.versions.append(copy.deepcopy(stored))

    def apply(self, plan: Plan | None) -> None:
        for write in () if plan is None else plan.writes:
            key = (write.resource_type, write.id)
            body = write.resource
            assert body["resourceType"] == write.resource_type and body["id"] == write.id
            assert "versionId" not in body.get("meta", {}), "the store sets meta.versionId"
            if write.if_match is None:
                assert key not in self.resources, f"create of existing {key}"
                self._put(body, 1)
            else:
                current = self.resources[key]
                assert current["meta"]["versionId"] == write.if_match, f"stale write to {key}"
                self._put(body, int(write.if_match) + 1)

    def get(self, reference: str) -> dict[str, Any]:
        kind, ident = reference.split("/", 1)
        return self.resources[(kind, ident)]

    def episode_resources(self, episode: EpisodeState | None) -> list[dict[str, Any]]:
        """What the task loads: the episode's Flag and its CommunicationRequests."""
        if episode is None:
            return []
        keys = [("Flag", episode.flag_id)] + [
            ("CommunicationRequest", c.id) for c in episode.communications
        ]
        return [copy.deepcopy(self.resources[k]) for k in keys if k in self.resources]

    def nurse_sets_status(self, reference: str, status: str) -> None:
        """A PUT through the API: the status changes and the version moves on."""
        current = self.get(reference)
        body = {k: v for k, v in copy.deepcopy(current).items() if k != "meta"}
        body["status"] = status
        self._put(body, int(current["meta"]["versionId"]) + 1)


AssessmentSource: TypeAlias = Assessment | Callable[[frozenset[str]], Assessment]


@dataclass
class Patient:
    """One patient as `evaluate_patient` sees it: stored resources and stored episode rows."""

    store: FakeStore = field(default_factory=FakeStore)
    episodes: list[EpisodeState] = field(default_factory=list)
    ids: Ids = field(default_factory=Ids)
    settings: AlertSettings = SETTINGS

    @property
    def open_episode(self) -> EpisodeState | None:
        opened = [e for e in self.episodes if e.status == "open"]
        assert len(opened) <= 1, "at most one open episode per patient"
        return opened[0] if opened else None

    @property
    def consumed(self) -> frozenset[str]:
        return frozenset(r for e in self.episodes if e.status == "closed" for r in e.evidence_refs)

    def _save(self, state: EpisodeState | None) -> None:
        if state is None:
            return
        self.episodes = [e for e in self.episodes if e.id != state.id] + [state]
        assert (
            self.open_episode is None
            or self.open_episode.id == state.id
            or (state.status == "closed")
        )

    def record(self) -> PatientRecord:
        """What the worker reads under the patient's lock (workers.evaluation.read_record)."""
        episode = self.open_episode
        return PatientRecord(
            episode=episode,
            alert_resources=self.store.episode_resources(episode),
            consumed=self.consumed,
            evidence=self.store.evidence(episode),
        )

    def evaluate(self, source: AssessmentSource, now: datetime) -> tuple[Plan | None, Plan]:
        """One run of the task: the worker's `evaluate_record` on what the store holds. `source`
        may depend on the consumed evidence, as the engine does."""
        self.store.clock = now

        def assess(consumed: frozenset[str]) -> Assessment:
            return source(consumed) if callable(source) else source

        decision = evaluate_record(
            self.record(), assess, now=now, config=CONFIG, settings=self.settings, new_id=self.ids
        )
        self.store.cited(decision.assessment)
        for plan in decision.plans:
            self.store.apply(plan)
            self._save(plan.episode)
        return decision.closing, decision.plan


def extensions(resource: dict[str, Any], url: str) -> list[dict[str, Any]]:
    return [e for e in resource.get("extension", ()) if e["url"] == url]
