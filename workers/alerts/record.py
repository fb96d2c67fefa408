"""One evaluation of one patient, from what the store holds to the Plans that follow: pure.

`evaluate_record` is the only sequence of decisions an evaluation makes: close the episode if
its Flag ended (its evidence becomes consumed), assess, find which recorded evidence was
withdrawn, decide. The worker (workers/evaluation.py) reads a `PatientRecord` from the store
and applies the result; the alert unit tests build a `PatientRecord` from an in-memory store
and call the same function with the same inputs, so no test passes on a path the worker never
takes. The only thing a test may swap is `assess`: the worker's is the rule engine
(`engine_assessment`), the unit tests' return hand-built assessments.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from workers.alerts.episodes import close_if_ended, decide
from workers.alerts.plan import Plan
from workers.alerts.settings import AlertSettings
from workers.alerts.state import EpisodeState
from workers.alerts.withdrawal import StoredEvidence, retracted_evidence
from workers.rules.config import RuleConfig
from workers.rules.engine import evaluate
from workers.rules.model import Assessment

Assess = Callable[[frozenset[str]], Assessment]
"""The patient's assessment given the consumed evidence (references of closed episodes)."""


@dataclass(frozen=True, slots=True)
class PatientRecord:
    """What the store says about one patient's alerts, read in one transaction."""

    episode: EpisodeState | None  # the open episode, if any
    alert_resources: Sequence[Mapping[str, Any]]  # its Flag and CommunicationRequests, with meta
    consumed: frozenset[str]  # evidence of the patient's closed episodes
    evidence: StoredEvidence  # the open episode's evidence as stored now (absent: deleted)


@dataclass(frozen=True, slots=True)
class Decision:
    """The evaluation's outcome: the closing of an ended episode (if any), then the plan."""

    closing: Plan | None
    assessment: Assessment
    plan: Plan

    @property
    def plans(self) -> tuple[Plan, ...]:
        """The plans to apply, in order."""
        return (self.plan,) if self.closing is None else (self.closing, self.plan)


def engine_assessment(
    patient: str, resources: Sequence[Mapping[str, Any]], at: datetime, config: RuleConfig
) -> Assess:
    """The rule engine over the patient's stored clinical records, as of `at`."""

    def assess(consumed: frozenset[str]) -> Assessment:
        return evaluate(patient, resources, at, config=config, consumed=consumed)

    return assess


def evaluate_record(
    record: PatientRecord,
    assess: Assess,
    *,
    now: datetime,
    config: RuleConfig,
    settings: AlertSettings,
    new_id: Callable[[], str],
) -> Decision:
    """Close, assess, withdraw, decide: the Plans that bring `record` in line with the data."""
    episode, current, consumed = record.episode, record.alert_resources, record.consumed
    closing = close_if_ended(episode, current, now=now, settings=settings)
    if closing is not None and episode is not None:
        consumed |= episode.evidence_refs
        episode, current = None, ()
    assessment = assess(consumed)
    plan = decide(
        assessment,
        episode,
        current,
        now=now,
        settings=settings,
        config=config,
        new_id=new_id,
        retracted=retracted_evidence(episode, record.evidence),
    )
    return Decision(closing, assessment, plan)
