"""One patient, walked through the whole life cycle the way `evaluate_patient` drives it."""

from __future__ import annotations

from contract import CLOSURE_REASON_URL, FLAG_DETAIL_URL
from tests.builders.findings import day, extensions
from tests.builders.stories import lifecycle_walk


def test_one_patient_through_the_whole_life_cycle() -> None:
    patient, steps = lifecycle_walk()
    by_name = {s.name: s for s in steps}
    store = patient.store

    # 1. Back pain opens an episode: an active Flag and an active request.
    opened = by_name["open"].plan
    assert opened.events == ("opened",)
    assert [(w.resource_type, w.if_match) for w in opened.writes] == [
        ("Flag", None),
        ("CommunicationRequest", None),
    ]
    first = opened.episode
    assert first is not None
    flag_ref = f"Flag/{first.flag_id}"
    cr1 = f"CommunicationRequest/{first.communications[0].id}"

    # 2. The same data again (the task ran twice): nothing is written.
    repeat = by_name["repeat"]
    assert repeat.closing is None
    assert repeat.plan.writes == () and repeat.plan.events == ("unchanged",)

    # 3. A second back-pain record: only the Flag's evidence changes.
    more = by_name["more of the same"].plan
    assert more.events == ("evidence-added",)
    assert [w.reference for w in more.writes] == [flag_ref]
    assert [s.plan.events for s in steps[:3]][-1] == ("evidence-added",)

    # 4. Grade 3 hypercalcaemia: priority urgent → stat, a new request replaces the first.
    escalate = by_name["escalate"].plan
    assert escalate.events == ("escalated", "finding-added", "superseded")
    assert escalate.episode is not None and escalate.episode.priority == "stat"
    cr2 = f"CommunicationRequest/{escalate.episode.communications[-1].id}"
    assert store.get(cr1)["status"] == "revoked"
    assert store.get(cr1)["note"][-1]["text"].startswith(f"Superseded by {cr2}.")
    assert store.get(cr2)["replaces"] == [{"reference": cr1}]
    assert store.get(cr2)["priority"] == "stat"

    # 5. The nurse acknowledges (request completed): same data, nothing written, not re-opened.
    acknowledged = by_name["acknowledged"].plan
    assert acknowledged.writes == () and acknowledged.events == ("unchanged",)
    assert store.get(cr2)["status"] == "completed"

    # 6. The nurse closes the Flag: the episode closes, the Flag gets period.end.
    closed = by_name["closed"]
    assert closed.closing is not None
    assert closed.closing.events == ("closed",)
    assert [(w.reference, w.if_match) for w in closed.closing.writes] == [
        (flag_ref, "4")  # created, evidence added, escalated, closed by the nurse
    ]
    assert store.get(flag_ref)["status"] == "inactive"
    assert store.get(flag_ref)["period"]["end"] == "2026-11-07T09:00:00Z"
    assert closed.closing.episode is not None
    assert closed.closing.episode.status == "closed"
    assert closed.closing.episode.closed_at == day(5)
    # ... and its evidence is consumed: the engine finds nothing, so nothing is planned.
    assert closed.plan.is_empty
    assert patient.consumed == {"Condition/bp1", "Observation/bp2", "Observation/ca1"}

    # 7. The old evidence does not reopen anything later either.
    again = by_name["no reopening"]
    assert again.closing is None and again.plan.is_empty

    # 8. New evidence (ALP) opens a new episode with just that finding.
    new = by_name["new evidence"].plan
    assert new.events == ("opened",)
    second = new.episode
    assert second is not None and second.id != first.id
    assert second.finding_codes == ("rising-alp",)
    assert second.evidence_refs == {"Observation/alp1"}
    assert second.priority == "routine"
    new_flag = new.writes[0].resource  # the store holds later versions (see step 9)
    assert [e["valueReference"]["reference"] for e in extensions(new_flag, FLAG_DETAIL_URL)] == [
        "Observation/alp1"
    ]

    # 9. The ALP result is entered in error: the Flag goes inactive, the request is revoked.
    retracted = by_name["retracted"].plan
    assert retracted.events == ("retracted", "closed", "revoked")
    new_flag = store.get(f"Flag/{second.flag_id}")
    assert new_flag["status"] == "inactive"
    assert new_flag["period"]["end"] == "2026-11-13T09:00:00Z"
    assert "Observation/alp1" in extensions(new_flag, CLOSURE_REASON_URL)[0]["valueString"]
    request = store.get(f"CommunicationRequest/{second.communications[0].id}")
    assert request["status"] == "revoked"
    assert "Observation/alp1" in request["note"][-1]["text"]
    assert "no longer supports" in request["note"][-1]["text"]

    # Both episodes are closed; one open episode at most at any time (checked on every save).
    assert [e.status for e in patient.episodes] == ["closed", "closed"]
    assert patient.open_episode is None
