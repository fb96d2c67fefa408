"""The withdrawal policy is the worker's, with its inputs required (issue 11, items 1 and 3).

Before, `decide` had a fallback production never took (`retracted` omitted: an assessment that
stopped citing a record withdrew it), the alert tests ran on that fallback, and the episode
logic read the rule set itself (`load_config()` inside pure code).
"""

from __future__ import annotations

import inspect
from dataclasses import replace
from typing import Any

import pytest

from tests.builders.findings import (
    CONFIG,
    Patient,
    assess,
    back_pain,
    clinical_record,
    day,
    mscc,
    rising_alp,
)
from workers.alerts import EpisodeState, decide, evaluate_record
from workers.alerts.reconcile import reconcile
from workers.alerts.withdrawal import retracted_evidence
from workers.rules import evaluate


def _episode(*findings: Any) -> EpisodeState:
    patient = Patient()
    patient.evaluate(assess(*findings), day(0))
    episode = patient.open_episode
    assert episode is not None
    return episode


_VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"


@pytest.mark.parametrize(
    ("stored", "retracted"),
    [
        (clinical_record("Observation/alp1"), False),
        (clinical_record("Observation/alp1", "preliminary"), False),
        (clinical_record("Observation/alp1", "amended"), False),
        (clinical_record("Observation/alp1", "entered-in-error"), True),
        (clinical_record("Observation/alp1", "cancelled"), True),
        (None, True),  # deleted
    ],
)
def test_an_observation_is_retracted_only_when_withdrawn_or_deleted(
    stored: dict[str, Any] | None, retracted: bool
) -> None:
    episode = _episode(rising_alp())
    evidence = {} if stored is None else {"Observation/alp1": stored}
    expected = {"Observation/alp1"} if retracted else set()
    assert retracted_evidence(episode, evidence) == expected


@pytest.mark.parametrize(
    ("coding", "retracted"),
    [
        ({"system": _VER, "code": "confirmed"}, False),
        ({"system": _VER, "code": "refuted"}, True),
        ({"code": "refuted"}, True),  # no system: HL7's is the only one the binding allows
        ({"system": _VER, "code": "entered-in-error"}, True),
        ({"system": "urn:local", "code": "refuted"}, False),  # another system's code
    ],
)
def test_a_condition_is_read_as_eligibility_reads_it(
    coding: dict[str, str], retracted: bool
) -> None:
    episode = _episode(back_pain())
    stored = {
        "resourceType": "Condition",
        "id": "bp1",
        "verificationStatus": {"coding": [coding]},
    }
    expected = {"Condition/bp1"} if retracted else set()
    assert retracted_evidence(episode, {"Condition/bp1": stored}) == expected


def test_no_episode_has_nothing_to_retract() -> None:
    assert retracted_evidence(None, {}) == frozenset()


def test_a_finding_that_stops_firing_is_kept_while_its_record_stands() -> None:
    """Production: only a withdrawn record retracts. The old test path (no `retracted`)
    withdrew back pain here and closed the alert; the worker never did."""
    patient = Patient()
    patient.evaluate(assess(back_pain()), day(0))
    _, plan = patient.evaluate(assess(at=day(1)), day(1))
    assert plan.events == ("unchanged",)
    assert plan.writes == ()
    patient.store.withdraw("Condition/bp1")
    _, plan = patient.evaluate(assess(at=day(2)), day(2))
    assert plan.events == ("retracted", "closed", "revoked")


def test_a_deleted_record_retracts_its_evidence() -> None:
    patient = Patient()
    patient.evaluate(assess(back_pain(), mscc()), day(0))
    patient.store.delete("Condition/neuro1")
    _, plan = patient.evaluate(assess(back_pain(), at=day(1)), day(1))
    assert plan.events == ("retracted", "priority-lowered", "superseded")
    assert plan.episode is not None and plan.episode.evidence_refs == {"Condition/bp1"}
    assert "deleted" in plan.episode.priority_history[-1].reason


def test_retracted_and_the_rule_set_are_required_inputs() -> None:
    """No fallback to take by omission, no rule set read behind the caller's back."""
    for function, names in (
        (decide, ("config", "retracted")),
        (reconcile, ("config", "retracted")),
        (evaluate_record, ("config",)),
        (evaluate, ("config",)),
    ):
        parameters = inspect.signature(function).parameters
        for name in names:
            assert parameters[name].default is inspect.Parameter.empty, (function, name)


def test_the_withdrawal_window_is_the_given_rule_sets() -> None:
    """A known bone metastasis withdraws the rising-ALP evidence still inside the recent
    window: the window is the rule set handed in, not one the episode logic loads."""
    patient = Patient()
    patient.evaluate(assess(rising_alp(date=day(0)), mscc(date=day(0))), day(0))
    episode = patient.open_episode
    assert episode is not None
    later = assess(mscc(date=day(0)), at=day(10), known_bone_metastasis=True)
    shipped = reconcile(episode, later, CONFIG, frozenset())
    assert [w.evidence.reference for w in shipped.withdrawals] == ["Observation/alp1"]
    shorter = reconcile(episode, later, replace(CONFIG, recent_days=7), frozenset())
    assert shorter.withdrawals == ()  # 10 days old: aged out of a 7-day window, kept
