"""Properties over random histories: priority never drops silently; repeats change nothing."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import datetime
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from contract import ALERT_PRIORITY_URL, PRIORITY_HISTORY_URL
from tests.builders.findings import Patient, assess, day, extensions, weight_loss
from workers.alerts import EpisodeState
from workers.rules.model import (
    FINDING_CODES,
    PRIORITY_ORDER,
    Assessment,
    Evidence,
    Finding,
    FindingCode,
    Priority,
    RedFlag,
    priority_rank,
)

# Each (code, k) names one stored record with a fixed clinical date, as real records have.
_RECORD_DATE_STEP_DAYS = 4


def _finding(code: FindingCode, k: int, priority: Priority) -> Finding:
    date = day(k * _RECORD_DATE_STEP_DAYS)
    ref = f"Observation/{code}-{k}"
    return Finding(
        code=code,
        priority=priority,
        date=date,
        evidence=(Evidence(ref, date, code.upper(), f"{code} record {k} on {date:%Y-%m-%d}"),),
        reason=f"{code} from record {k} at {priority}",
    )


_step = st.fixed_dictionaries(
    {
        "advance": st.sampled_from([0, 0, 1, 2, 5, 12, 40]),
        # Carry the previous step's records forward (the common case: data only grows) ...
        "carry": st.booleans(),
        # ... but some are withdrawn in the store: entered in error (a retraction).
        "drop": st.sets(st.sampled_from(FINDING_CODES), max_size=2),
        "picks": st.dictionaries(
            st.sampled_from(FINDING_CODES),
            st.tuples(st.integers(min_value=0, max_value=6), st.sampled_from(PRIORITY_ORDER)),
            max_size=4,
        ),
        "red_flag": st.booleans(),
        "nurse": st.sampled_from(["none", "none", "none", "complete", "close"]),
    }
)


def _flag_history(flag: dict[str, Any]) -> list[tuple[str | None, str, str]]:
    out: list[tuple[str | None, str, str]] = []
    for ext in extensions(flag, PRIORITY_HISTORY_URL):
        parts = {p["url"]: p for p in ext["extension"]}
        out.append(
            (
                parts["from"]["valueCode"] if "from" in parts else None,
                parts["to"]["valueCode"],
                parts["reason"]["valueString"],
            )
        )
    return out


def _check_episode(patient: Patient, before: EpisodeState | None, after: EpisodeState) -> None:
    history = after.priority_history
    # The history is a complete chain: it starts at the opening and ends at the priority now.
    assert history[0].from_priority is None
    assert all(h.reason.strip() for h in history)
    assert all(a.to_priority == b.from_priority for a, b in itertools.pairwise(history))
    assert history[-1].to_priority == after.priority
    if before is not None and before.id == after.id:
        assert history[: len(before.priority_history)] == before.priority_history
        if priority_rank(after.priority) < priority_rank(before.priority):
            event("priority lowered")
            added = history[len(before.priority_history) :]
            assert any(
                (h.from_priority, h.to_priority) == (before.priority, after.priority) and h.reason
                for h in added
            ), "a lowered priority must be recorded with its reason"
    # The Flag carries the same history, reasons included.
    flag = patient.store.get(f"Flag/{after.flag_id}")
    assert _flag_history(flag) == [(h.from_priority, h.to_priority, h.reason) for h in history]
    if after.status == "open":
        assert flag["status"] == "active"
        assert extensions(flag, ALERT_PRIORITY_URL)[0]["valueCode"] == after.priority
        active = [
            c for c in after.communications if patient.store.get(c.reference)["status"] == "active"
        ]
        assert len(active) <= 1, "at most one open request per episode"


def _source(
    findings: tuple[Finding, ...], at: datetime, red_flags: list[RedFlag]
) -> Callable[[frozenset[str]], Assessment]:
    """What the engine would return over these records, given the consumed evidence."""

    def source(consumed: frozenset[str]) -> Assessment:
        return assess(*findings, at=at, consumed=consumed, red_flags=red_flags)

    return source


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_step, min_size=1, max_size=14))
def test_priority_never_drops_without_a_recorded_reason(steps: list[dict[str, Any]]) -> None:
    patient = Patient()
    at: datetime = day(0)
    picks: dict[FindingCode, tuple[int, Priority]] = {}
    withdrawn: set[str] = set()
    for step in steps:
        at = at + (day(step["advance"]) - day(0))
        picks = {**(picks if step["carry"] else {}), **step["picks"]}
        for code in step["drop"] & picks.keys():
            ref = f"Observation/{code}-{picks[code][0]}"
            patient.store.withdraw(ref)  # the engine never cites it again
            withdrawn.add(ref)
        picks = {c: p for c, p in picks.items() if c not in step["drop"]}
        findings = tuple(
            _finding(code, k, priority)
            for code, (k, priority) in sorted(picks.items())
            if day(k * _RECORD_DATE_STEP_DAYS) <= at and f"Observation/{code}-{k}" not in withdrawn
        )
        source = _source(findings, at, [weight_loss()] if step["red_flag"] else [])

        before = {e.id: e for e in patient.episodes}
        closing, plan = patient.evaluate(source, at)
        for name in (*(closing.events if closing else ()), *plan.events):
            event(name)
        for episode in patient.episodes:
            _check_episode(patient, before.get(episode.id), episode)

        # The task may run twice: the second run writes nothing.
        versions = len(patient.store.versions)
        closing, again = patient.evaluate(source, at)
        assert closing is None
        assert again.writes == ()
        assert len(patient.store.versions) == versions

        open_episode = patient.open_episode
        if open_episode is None:
            continue
        if step["nurse"] == "close":
            patient.store.nurse_sets_status(f"Flag/{open_episode.flag_id}", "inactive")
        elif step["nurse"] == "complete":
            last = open_episode.communications[-1].reference
            if patient.store.get(last)["status"] == "active":
                patient.store.nurse_sets_status(last, "completed")
