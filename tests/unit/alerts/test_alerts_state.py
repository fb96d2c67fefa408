"""EpisodeState survives its JSON column unchanged, and refuses what it cannot read."""

from __future__ import annotations

import json

import pytest

from tests.builders.stories import every_kind_of_alert, lifecycle_walk, random_story
from workers.alerts import EpisodeState


def _all_states() -> list[EpisodeState]:
    states = [s.plan.episode for s in lifecycle_walk()[1] if s.plan.episode is not None]
    states += every_kind_of_alert().episodes
    for seed in range(5):
        states += random_story(seed).episodes
    return states


def test_state_round_trips_through_json() -> None:
    states = _all_states()
    assert len(states) > 10
    for state in states:
        stored = json.loads(json.dumps(state.to_json()))
        assert EpisodeState.from_json(stored) == state
        assert stored["evidence_refs"] == sorted(state.evidence_refs)
        assert stored["finding_codes"] == list(state.finding_codes)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("priority", "soon"),
        ("status", "paused"),
        ("opened_at", "2026-11-02T09:00:00"),
        ("schema", 99),
    ],
)
def test_unreadable_state_is_refused(key: str, value: object) -> None:
    data = _all_states()[0].to_json()
    data[key] = value
    with pytest.raises(ValueError):
        EpisodeState.from_json(data)
