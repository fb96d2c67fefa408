"""`close_if_ended`: the nurse's Flag is the episode's switch."""

from __future__ import annotations

from tests.builders.findings import Patient, assess, back_pain, day, rising_alp
from tests.builders.stories import closed_with_an_open_request
from workers.alerts import close_if_ended


def _opened() -> Patient:
    patient = Patient()
    patient.evaluate(assess(back_pain()), day(0))
    return patient


def test_no_episode_or_a_closed_one_needs_no_closing() -> None:
    assert close_if_ended(None, [], now=day(1)) is None
    patient = _opened()
    patient.store.nurse_sets_status("Flag/id-2", "inactive")
    patient.evaluate(assess(back_pain(), at=day(1)), day(1))
    closed = patient.episodes[0]
    assert closed.status == "closed"
    assert close_if_ended(closed, [], now=day(2)) is None


def test_an_active_flag_keeps_the_episode_open() -> None:
    patient = _opened()
    episode = patient.open_episode
    assert close_if_ended(episode, patient.store.episode_resources(episode), now=day(1)) is None


def test_an_inactive_flag_closes_the_episode_and_gets_period_end() -> None:
    patient = _opened()
    patient.store.nurse_sets_status("Flag/id-2", "inactive")
    episode = patient.open_episode
    plan = close_if_ended(episode, patient.store.episode_resources(episode), now=day(1))
    assert plan is not None
    assert plan.events == ("closed", "revoked")
    flag_write, request_write = plan.writes
    assert (flag_write.reference, flag_write.if_match) == ("Flag/id-2", "2")
    assert flag_write.resource["status"] == "inactive"  # the nurse's status is kept
    assert flag_write.resource["period"]["end"] == "2026-11-03T09:00:00Z"
    assert "meta" not in flag_write.resource
    # The request nobody completed leaves the worklist, saying why.
    assert (request_write.reference, request_write.if_match) == ("CommunicationRequest/id-3", "1")
    assert request_write.resource["status"] == "revoked"
    assert "Flag/id-2 was set to inactive" in request_write.resource["note"][-1]["text"]
    assert plan.episode is not None
    assert (plan.episode.status, plan.episode.closed_at) == ("closed", day(1))
    assert plan.episode.closed_reason == "Flag/id-2 was set to inactive outside the service."
    assert plan.episode.evidence_refs == {"Condition/bp1"}  # kept: it becomes consumed


def test_a_flag_that_already_has_an_end_is_not_written_again() -> None:
    patient = _opened()
    patient.store.nurse_sets_status("CommunicationRequest/id-3", "completed")
    flag = patient.store.get("Flag/id-2")
    flag["period"]["end"] = "2026-11-02T10:00:00Z"
    patient.store.nurse_sets_status("Flag/id-2", "inactive")
    episode = patient.open_episode
    plan = close_if_ended(episode, patient.store.episode_resources(episode), now=day(1))
    assert plan is not None
    assert plan.writes == ()
    assert plan.events == ("closed",)


def test_a_flag_entered_in_error_or_gone_also_ends_the_episode() -> None:
    patient = _opened()
    patient.store.nurse_sets_status("Flag/id-2", "entered-in-error")
    episode = patient.open_episode
    plan = close_if_ended(episode, patient.store.episode_resources(episode), now=day(1))
    assert plan is not None and plan.episode is not None
    assert plan.episode.status == "closed"
    assert "entered-in-error" in (plan.episode.closed_reason or "")

    gone = close_if_ended(episode, [], now=day(1))
    assert gone is not None and gone.writes == ()
    assert gone.episode is not None and gone.episode.status == "closed"
    assert gone.episode.closed_reason == "Flag/id-2 is no longer stored."


def test_after_closing_only_new_evidence_opens_a_new_episode() -> None:
    patient = _opened()
    patient.store.nurse_sets_status("Flag/id-2", "inactive")
    closing, plan = patient.evaluate(
        lambda consumed: assess(back_pain(), rising_alp(date=day(1)), at=day(1), consumed=consumed),
        day(1),
    )
    assert closing is not None and closing.events == ("closed", "revoked")
    assert plan.events == ("opened",)
    assert plan.episode is not None and plan.episode.finding_codes == ("rising-alp",)


def test_the_story_of_a_flag_closed_with_its_request_open() -> None:
    patient = closed_with_an_open_request()
    statuses = {ref: r["status"] for ref, r in patient.store.resources.items() if ref[0] != "Flag"}
    assert set(statuses.values()) == {"revoked"}
    assert [e.status for e in patient.episodes] == ["closed", "closed"]
