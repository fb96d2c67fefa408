"""Patient stories walked through the task stand-in; shared by the life-cycle and FHIR tests.

Each returns the Patient (store and episodes) and the named steps, so the life-cycle test can
assert step by step and the validity test can check every resource version that was written.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial

from tests.builders.findings import (
    Patient,
    assess,
    back_pain,
    day,
    high_spine,
    hypercalcemia,
    mscc,
    rising_alp,
    rising_calcium,
    weight_loss,
)
from workers.alerts import Plan
from workers.rules.model import Assessment, Finding


@dataclass(frozen=True)
class Step:
    name: str
    closing: Plan | None
    plan: Plan


def _two_back_pain_records() -> Finding:
    first = back_pain("Condition/bp1", day(-2))
    second = back_pain("Observation/bp2", day(1))
    return replace(second, evidence=(*first.evidence, *second.evidence))


def lifecycle_walk() -> tuple[Patient, list[Step]]:
    """open → repeat → more of the same → escalate → acknowledge → close → no reopening →
    new evidence opens a new episode → retraction revokes."""
    patient = Patient()
    steps: list[Step] = []

    def run(name: str, findings: Callable[[], tuple[Finding, ...]], at: float) -> None:
        def source(consumed: frozenset[str]) -> Assessment:
            return assess(*findings(), at=day(at), consumed=consumed, red_flags=[high_spine()])

        closing, plan = patient.evaluate(source, day(at))
        steps.append(Step(name, closing, plan))

    back = back_pain("Condition/bp1", day(-2))
    calcium = hypercalcemia("Observation/ca1", day(2.5), value=13.1, grade=3)
    alp = rising_alp("Observation/alp1", day(9))

    run("open", lambda: (back,), 0)
    run("repeat", lambda: (back,), 0.05)
    run("more of the same", lambda: (_two_back_pain_records(),), 2)
    run("escalate", lambda: (_two_back_pain_records(), calcium), 3)
    active = [c.id for c in patient.episodes[-1].communications][-1]
    patient.store.nurse_sets_status(f"CommunicationRequest/{active}", "completed")
    run("acknowledged", lambda: (_two_back_pain_records(), calcium), 4)
    patient.store.nurse_sets_status(f"Flag/{patient.episodes[-1].flag_id}", "inactive")
    run("closed", lambda: (_two_back_pain_records(), calcium), 5)
    run("no reopening", lambda: (_two_back_pain_records(), calcium), 6)
    run("new evidence", lambda: (_two_back_pain_records(), calcium, alp), 10)
    patient.store.withdraw("Observation/alp1")  # the ALP result is entered in error
    run("retracted", lambda: (_two_back_pain_records(), calcium), 11)
    return patient, steps


def every_kind_of_alert() -> Patient:
    """All finding codes and red flags on one Flag, then a partial retraction."""
    patient = Patient()
    everything = (
        back_pain(),
        mscc(),
        hypercalcemia(),
        rising_alp(value=420.0),
    )
    patient.evaluate(assess(*everything, red_flags=[high_spine(), weight_loss()]), day(0))
    patient.store.withdraw("Condition/neuro1", "refuted")
    patient.store.withdraw("Observation/alp1", "cancelled")
    patient.evaluate(assess(back_pain(), hypercalcemia(), at=day(1)), day(1))
    patient.store.withdraw("Observation/ca1")
    patient.evaluate(assess(back_pain(), rising_calcium(date=day(2)), at=day(2)), day(2))
    return patient


def closed_with_an_open_request() -> Patient:
    """The nurse closes the Flag without completing the request; then entered-in-error."""
    patient = Patient()
    patient.evaluate(assess(rising_calcium()), day(0))
    episode = patient.open_episode
    assert episode is not None
    patient.store.nurse_sets_status(f"Flag/{episode.flag_id}", "inactive")
    patient.evaluate(assess(rising_calcium(), at=day(1)), day(1))
    patient.evaluate(assess(mscc("Condition/n2", day(3)), at=day(3)), day(3))
    episode = patient.open_episode
    assert episode is not None
    patient.store.nurse_sets_status(f"Flag/{episode.flag_id}", "entered-in-error")
    patient.evaluate(assess(at=day(4)), day(4))
    return patient


FINDING_POOL: tuple[Finding, ...] = (
    back_pain("Condition/bp1", day(0)),
    back_pain("Condition/bp2", day(12)),
    mscc("Condition/n1", day(6)),
    hypercalcemia("Observation/ca1", day(3), value=11.2, grade=1),
    hypercalcemia("Observation/ca2", day(9), value=12.9, grade=3),
    rising_calcium("Observation/ca3", day(15)),
    rising_alp("Observation/alp1", day(4), value=180.0),
    rising_alp("Observation/alp2", day(18), value=400.0),
)


def _assess_unconsumed(
    findings: tuple[Finding, ...], at: datetime, consumed: frozenset[str]
) -> Assessment:
    return assess(*findings, at=at, consumed=consumed)


def random_story(seed: int, length: int = 12) -> Patient:
    """A seeded random walk over the finding pool, with nurse actions and withdrawn records
    (entered in error: never cited again) in between."""
    rng = random.Random(seed)
    patient = Patient()
    gone: set[str] = set()
    for i in range(length):
        at = day(i * 2)
        pool = [f for f in FINDING_POOL if not {e.reference for e in f.evidence} & gone]
        chosen = [f for f in pool if f.date <= at and rng.random() < 0.5]
        by_code: dict[str, Finding] = {}
        for finding in chosen:
            by_code[finding.code] = finding  # at most one finding per code, the latest
        findings, when = tuple(by_code.values()), at
        patient.evaluate(partial(_assess_unconsumed, findings, when), at)
        episode = patient.open_episode
        if episode is not None and rng.random() < 0.1:
            withdrawn = rng.choice(sorted(episode.evidence_refs))
            patient.store.withdraw(withdrawn)
            gone.add(withdrawn)
        elif episode is not None and rng.random() < 0.15:
            patient.store.nurse_sets_status(f"Flag/{episode.flag_id}", "inactive")
        elif episode is not None and rng.random() < 0.2:
            last = episode.communications[-1].id
            if patient.store.get(f"CommunicationRequest/{last}")["status"] == "active":
                patient.store.nurse_sets_status(f"CommunicationRequest/{last}", "completed")
    return patient
