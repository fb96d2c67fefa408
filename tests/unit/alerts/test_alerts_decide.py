"""Every decision branch of `decide` (spec §6), one small story each."""

from __future__ import annotations

from dataclasses import replace

import pytest

from contract import (
    ALERT_PRIORITY_URL,
    CLOSURE_REASON_URL,
    FINDING_EXTENSION_URL,
    FLAG_DETAIL_URL,
    PRIORITY_HISTORY_URL,
    RED_FLAG_EXTENSION_URL,
)
from tests.builders.findings import (
    CONFIG,
    PATIENT,
    RULESET,
    T0,
    Ids,
    Patient,
    assess,
    back_pain,
    day,
    extensions,
    high_spine,
    hypercalcemia,
    mscc,
    rising_alp,
    rising_calcium,
    weight_loss,
)
from workers.alerts import AlertSettings, Plan, decide


def _history(flag: dict[str, object]) -> list[dict[str, str]]:
    """The Flag's priority-history extensions as {from, to, reason, date} dicts."""
    out = []
    for ext in extensions(flag, PRIORITY_HISTORY_URL):
        parts = {
            p["url"]: next(v for k, v in p.items() if k.startswith("value"))
            for p in ext["extension"]
        }
        out.append(parts)
    return out


def _active_requests(patient: Patient) -> list[dict[str, object]]:
    return [
        r
        for (kind, _), r in patient.store.resources.items()
        if kind == "CommunicationRequest" and r["status"] == "active"
    ]


# --- no episode --------------------------------------------------------------------------------


def test_no_finding_and_no_episode_is_an_empty_plan() -> None:
    plan = decide(
        assess(),
        None,
        [],
        now=T0,
        settings=AlertSettings(),
        config=CONFIG,
        retracted=frozenset(),
        new_id=Ids(),
    )
    assert plan == Plan()
    assert plan.is_empty


def test_red_flags_alone_open_nothing() -> None:
    plan = decide(
        assess(red_flags=[weight_loss()]),
        None,
        [],
        now=T0,
        settings=AlertSettings(),
        config=CONFIG,
        retracted=frozenset(),
        new_id=Ids(),
    )
    assert plan.is_empty


def test_opening_creates_an_active_flag_and_an_active_request() -> None:
    assessment = assess(
        back_pain(date=day(-3)), hypercalcemia(date=day(-1)), red_flags=[high_spine()]
    )
    plan = decide(
        assessment,
        None,
        [],
        now=T0,
        settings=AlertSettings(),
        config=CONFIG,
        retracted=frozenset(),
        new_id=Ids(),
    )

    assert plan.events == ("opened",)
    assert [(w.resource_type, w.id, w.if_match) for w in plan.writes] == [
        ("Flag", "id-2", None),
        ("CommunicationRequest", "id-3", None),
    ]
    episode = plan.episode
    assert episode is not None
    assert (episode.id, episode.flag_id, episode.status, episode.opened_at) == (
        "id-1",
        "id-2",
        "open",
        T0,
    )
    assert episode.patient == PATIENT
    assert episode.finding_codes == ("hypercalcemia", "new-back-pain")
    assert episode.evidence_refs == {"Condition/bp1", "Observation/ca1"}
    # Back pain (urgent) + calcium (asap): a combination never lifts asap to stat.
    assert episode.priority == "asap"
    assert [(c.id, c.priority, c.finding_codes) for c in episode.communications] == [
        ("id-3", "asap", ("hypercalcemia", "new-back-pain"))
    ]
    assert [(h.from_priority, h.to_priority, h.reason) for h in episode.priority_history] == [
        (None, "asap", assessment.priority_reason)
    ]
    assert episode.ruleset_version == RULESET

    flag = plan.writes[0].resource
    assert flag["status"] == "active"
    assert flag["category"][0]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/flag-category",
        "code": "clinical",
        "display": "Clinical",
    }
    assert flag["code"]["coding"][0]["code"] == "bone-metastasis-risk"
    assert flag["code"]["coding"][0]["display"] == "Possible bone metastasis: oncology review"
    assert flag["subject"] == {"reference": PATIENT}
    assert flag["period"] == {"start": day(-3).isoformat().replace("+00:00", "Z")}
    assert flag["author"]["reference"] == "Device/fhir-alerts"
    assert {e["valueReference"]["reference"] for e in extensions(flag, FLAG_DETAIL_URL)} == {
        "Condition/bp1",
        "Observation/ca1",
    }
    settings = AlertSettings()
    assert extensions(flag, settings.ruleset_extension_url) == [
        {"url": settings.ruleset_extension_url, "valueString": RULESET}
    ]
    assert [
        e["valueCodeableConcept"]["coding"][0]["code"]
        for e in extensions(flag, FINDING_EXTENSION_URL)
    ] == ["hypercalcemia", "new-back-pain"]
    red = extensions(flag, RED_FLAG_EXTENSION_URL)
    assert red[0]["valueCodeableConcept"]["coding"][0] == {
        "system": settings.red_flag_system,
        "code": "high-spine-back-pain",
        "display": "Pain in the upper back or neck (thoracic or cervical spine)",
    }
    assert extensions(flag, ALERT_PRIORITY_URL)[0]["valueCode"] == "asap"
    assert _history(flag) == [
        {"to": "asap", "reason": assessment.priority_reason, "date": "2026-11-02T09:00:00Z"}
    ]
    assert "meta" not in flag

    request = plan.writes[1].resource
    assert request["status"] == "active"
    assert request["category"][0]["coding"][0]["code"] == "alert"
    assert request["priority"] == "asap"
    assert request["subject"] == {"reference": PATIENT}
    assert request["recipient"] == [{"reference": "CareTeam/oncology"}]
    assert request["about"][0]["reference"] == "Flag/id-2"
    assert request["requester"]["reference"] == "Device/fhir-alerts"
    assert request["authoredOn"] == "2026-11-02T09:00:00Z"
    assert [r["reference"] for r in request["reasonReference"]] == [
        "Condition/bp1",
        "Observation/ca1",
    ]
    assert [(c["coding"][0]["system"], c["coding"][0]["code"]) for c in request["reasonCode"]] == [
        (settings.finding_system, "hypercalcemia"),
        (settings.finding_system, "new-back-pain"),
    ]
    assert "replaces" not in request
    text = request["payload"][0]["contentString"]
    for expected in (
        "11.8 mg/dL",  # value and unit
        "2026-11-01",  # date
        "baseline 9.6 mg/dL",
        "grade 2",
        "upper back",  # red flag
        "urgent oncology review; consider whole-spine MRI within 1 week",
        f"Rule set {RULESET}",
        "albumin 3.9 g/dL",  # supporting record
    ):
        assert expected in text, expected


def test_opening_for_suspected_mscc_says_contact_the_mscc_coordinator() -> None:
    plan = decide(
        assess(mscc()),
        None,
        [],
        now=T0,
        settings=AlertSettings(),
        config=CONFIG,
        retracted=frozenset(),
        new_id=Ids(),
    )
    request = plan.writes[1].resource
    assert request["priority"] == "stat"
    text = request["payload"][0]["contentString"]
    assert "contact the MSCC coordinator immediately" in text
    assert text.index("MSCC coordinator") < text.index("Rule set")


def test_settings_choose_the_team_device_and_code_systems() -> None:
    settings = AlertSettings(
        oncology_team="CareTeam/breast-onc",
        device="Device/alerts-2",
        code_system_base="https://example.org/cs",
        ruleset_extension_url="https://example.org/ext/ruleset",
    )
    plan = decide(
        assess(back_pain()),
        None,
        [],
        now=T0,
        settings=settings,
        config=CONFIG,
        retracted=frozenset(),
        new_id=Ids(),
    )
    flag, request = (w.resource for w in plan.writes)
    assert request["recipient"] == [{"reference": "CareTeam/breast-onc"}]
    assert flag["author"]["reference"] == "Device/alerts-2"
    assert flag["code"]["coding"][0]["system"] == "https://example.org/cs/alert"
    assert request["reasonCode"][0]["coding"][0]["system"] == "https://example.org/cs/finding"
    assert extensions(flag, "https://example.org/ext/ruleset")[0]["valueString"] == RULESET


def test_decisions_are_deterministic() -> None:
    """No clock, no randomness: the same inputs give the same plan."""
    assessment = assess(back_pain(), rising_alp())
    first = decide(
        assessment,
        None,
        [],
        now=T0,
        settings=AlertSettings(),
        config=CONFIG,
        retracted=frozenset(),
        new_id=Ids(),
    )
    second = decide(
        assessment,
        None,
        [],
        now=T0,
        settings=AlertSettings(),
        config=CONFIG,
        retracted=frozenset(),
        new_id=Ids(),
    )
    assert first == second


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        decide(
            assess(back_pain()),
            None,
            [],
            now=T0.replace(tzinfo=None),
            config=CONFIG,
            retracted=frozenset(),
            new_id=Ids(),
        )


# --- an open episode ------------------------------------------------------------------------


def _opened(*findings: object, red_flags: tuple[object, ...] = ()) -> Patient:
    patient = Patient()
    patient.evaluate(assess(*findings, red_flags=red_flags), T0)
    assert patient.open_episode is not None
    return patient


def test_unchanged_data_writes_nothing() -> None:
    patient = _opened(back_pain(), red_flags=(high_spine(),))
    before = patient.open_episode
    versions = len(patient.store.versions)
    # A second run, an hour later: same data, different evaluation time.
    _, plan = patient.evaluate(
        assess(back_pain(), red_flags=[high_spine()], at=day(0.04)), day(0.04)
    )
    assert plan.writes == ()
    assert plan.events == ("unchanged",)
    assert plan.episode == before
    assert len(patient.store.versions) == versions


def test_new_evidence_of_a_notified_kind_only_updates_the_flag() -> None:
    patient = _opened(back_pain("Condition/bp1", day(-5)))
    newer = back_pain("Condition/bp1", day(-5))
    newer = replace(
        newer, evidence=(*newer.evidence, *back_pain("Observation/bp2", day(-1)).evidence)
    )
    _, plan = patient.evaluate(assess(newer, at=day(1)), day(1))
    assert plan.events == ("evidence-added",)
    assert [(w.resource_type, w.if_match) for w in plan.writes] == [("Flag", "1")]
    flag = plan.writes[0].resource
    assert {e["valueReference"]["reference"] for e in extensions(flag, FLAG_DETAIL_URL)} == {
        "Condition/bp1",
        "Observation/bp2",
    }
    assert len(_active_requests(patient)) == 1
    assert plan.episode is not None and len(plan.episode.communications) == 1


def test_a_rise_in_priority_makes_a_new_request_that_replaces_the_open_one() -> None:
    patient = _opened(hypercalcemia("Observation/ca1", day(-2), value=11.0, grade=1))
    assert patient.open_episode is not None and patient.open_episode.priority == "urgent"
    worse = hypercalcemia("Observation/ca2", day(1), value=13.0, grade=3)
    _, plan = patient.evaluate(assess(worse, at=day(1)), day(1))

    assert plan.events == ("escalated", "evidence-added", "superseded")
    assert [(w.resource_type, w.id, w.if_match) for w in plan.writes] == [
        ("Flag", "id-2", "1"),
        ("CommunicationRequest", "id-3", "1"),
        ("CommunicationRequest", "id-4", None),
    ]
    old, new = plan.writes[1].resource, plan.writes[2].resource
    assert old["status"] == "revoked"
    assert old["note"][-1]["text"].startswith("Superseded by CommunicationRequest/id-4.")
    assert "raised from urgent to stat" in old["note"][-1]["text"]
    assert new["priority"] == "stat"
    assert new["replaces"] == [{"reference": "CommunicationRequest/id-3"}]
    assert "Priority raised from urgent to stat" in new["payload"][0]["contentString"]
    assert _history(plan.writes[0].resource)[-1]["from"] == "urgent"
    assert _history(plan.writes[0].resource)[-1]["to"] == "stat"
    episode = plan.episode
    assert episode is not None
    assert [(c.id, c.priority) for c in episode.communications] == [
        ("id-3", "urgent"),
        ("id-4", "stat"),
    ]
    assert [(h.from_priority, h.to_priority) for h in episode.priority_history] == [
        (None, "urgent"),
        ("urgent", "stat"),
    ]
    assert [r["id"] for r in _active_requests(patient)] == ["id-4"]


def test_a_new_finding_code_at_the_same_priority_makes_a_new_request() -> None:
    patient = _opened(mscc())
    _, plan = patient.evaluate(
        assess(mscc(), back_pain("Condition/bp9", day(1)), at=day(1)), day(1)
    )
    assert plan.events == ("finding-added", "superseded")
    episode = plan.episode
    assert episode is not None and episode.priority == "stat"
    new = plan.writes[-1].resource
    assert [c["coding"][0]["code"] for c in new["reasonCode"]] == [
        "new-back-pain",
        "suspected-mscc",
    ]
    assert "New finding: New back pain." in new["payload"][0]["contentString"]
    assert len(episode.priority_history) == 1  # no priority change


def test_an_acknowledged_request_is_not_reopened_by_more_of_the_same() -> None:
    patient = _opened(back_pain("Condition/bp1", day(-5)))
    patient.store.nurse_sets_status("CommunicationRequest/id-3", "completed")
    more = replace(
        back_pain("Condition/bp1", day(-5)),
        evidence=(
            *back_pain("Condition/bp1", day(-5)).evidence,
            *back_pain("Condition/bp2").evidence,
        ),
    )
    _, plan = patient.evaluate(assess(more, at=day(1)), day(1))
    assert plan.events == ("evidence-added",)
    assert [w.resource_type for w in plan.writes] == ["Flag"]
    assert patient.store.get("CommunicationRequest/id-3")["status"] == "completed"


def test_after_acknowledgement_an_escalation_makes_a_fresh_request_replacing_nothing() -> None:
    patient = _opened(back_pain())
    patient.store.nurse_sets_status("CommunicationRequest/id-3", "completed")
    _, plan = patient.evaluate(assess(back_pain(), mscc(date=day(1)), at=day(1)), day(1))
    assert plan.events == ("escalated", "finding-added")
    assert [(w.resource_type, w.if_match) for w in plan.writes] == [
        ("Flag", "1"),
        ("CommunicationRequest", None),
    ]
    assert "replaces" not in plan.writes[-1].resource
    assert patient.store.get("CommunicationRequest/id-3")["status"] == "completed"


def test_a_new_red_flag_only_updates_the_flag() -> None:
    patient = _opened(back_pain())
    _, plan = patient.evaluate(assess(back_pain(), red_flags=[weight_loss()], at=day(1)), day(1))
    assert plan.events == ("red-flag-added",)
    assert [w.resource_type for w in plan.writes] == ["Flag"]
    codes = [
        e["valueCodeableConcept"]["coding"][0]["code"]
        for e in extensions(plan.writes[0].resource, RED_FLAG_EXTENSION_URL)
    ]
    assert codes == ["weight-loss"]


def test_evidence_that_ages_out_is_kept_and_changes_nothing() -> None:
    patient = _opened(back_pain("Condition/bp1", day(-1)))
    _, plan = patient.evaluate(assess(at=day(45)), day(45))
    assert plan.events == ("unchanged",)
    assert plan.writes == ()


def test_a_new_finding_after_the_first_aged_out_keeps_both() -> None:
    patient = _opened(back_pain("Condition/bp1", day(-1)))
    _, plan = patient.evaluate(assess(rising_alp(date=day(44)), at=day(45)), day(45))
    episode = plan.episode
    assert episode is not None
    assert episode.finding_codes == ("new-back-pain", "rising-alp")
    # The engine did not combine them (back pain is no longer recent): priority stays urgent.
    assert episode.priority == "urgent"
    assert plan.events == ("finding-added", "superseded")


def test_a_newer_lower_value_supersedes_without_lowering_the_priority() -> None:
    patient = _opened(hypercalcemia("Observation/ca1", day(-1), value=13.2, grade=3))
    _, plan = patient.evaluate(
        assess(hypercalcemia("Observation/ca2", day(2), value=11.2, grade=1), at=day(2)), day(2)
    )
    assert plan.events == ("evidence-added",)
    assert [w.resource_type for w in plan.writes] == ["Flag"]
    episode = plan.episode
    assert episode is not None and episode.priority == "stat"
    assert episode.evidence_refs == {"Observation/ca1", "Observation/ca2"}
    # The words still explain the recorded (grade 3) priority.
    assert "13.2" in episode.findings[0].reason


def test_an_out_of_order_run_does_not_retract_newer_evidence() -> None:
    patient = _opened(back_pain("Condition/bp1", day(0)))
    # A late task evaluating at an earlier time than the evidence: it cannot see it yet.
    _, plan = patient.evaluate(assess(at=day(-2)), day(1))
    assert plan.events == ("unchanged",)


# --- retraction ------------------------------------------------------------------------------


def test_retracting_all_evidence_deactivates_the_flag_and_revokes_open_requests() -> None:
    patient = _opened(back_pain(), red_flags=(weight_loss(),))
    patient.store.withdraw("Condition/bp1")
    _, plan = patient.evaluate(assess(at=day(1)), day(1))
    assert plan.events == ("retracted", "closed", "revoked")
    assert [(w.resource_type, w.if_match) for w in plan.writes] == [
        ("Flag", "1"),
        ("CommunicationRequest", "1"),
    ]
    flag, request = (w.resource for w in plan.writes)
    assert flag["status"] == "inactive"
    assert flag["period"] == {"start": "2026-11-02T09:00:00Z", "end": "2026-11-03T09:00:00Z"}
    closure = extensions(flag, CLOSURE_REASON_URL)[0]["valueString"]
    assert "Condition/bp1" in closure and "entered in error" in closure
    assert extensions(flag, FLAG_DETAIL_URL) == []
    assert request["status"] == "revoked"
    assert "Condition/bp1" in request["note"][-1]["text"]
    assert request["note"][-1]["time"] == "2026-11-03T09:00:00Z"
    episode = plan.episode
    assert episode is not None
    assert (episode.status, episode.closed_at) == ("closed", day(1))
    assert episode.evidence_refs == frozenset()
    assert patient.open_episode is None


def test_retraction_does_not_touch_acknowledged_requests() -> None:
    patient = _opened(back_pain())
    patient.store.nurse_sets_status("CommunicationRequest/id-3", "completed")
    patient.store.withdraw("Condition/bp1")
    _, plan = patient.evaluate(assess(at=day(1)), day(1))
    assert plan.events == ("retracted", "closed")
    assert [w.resource_type for w in plan.writes] == ["Flag"]


def test_partial_retraction_lowers_the_priority_with_a_recorded_reason() -> None:
    patient = _opened(back_pain(), mscc())
    patient.store.withdraw("Condition/neuro1", "refuted")
    _, plan = patient.evaluate(assess(back_pain(), at=day(1)), day(1))
    assert plan.events == ("retracted", "priority-lowered", "superseded")
    episode = plan.episode
    assert episode is not None
    assert (episode.status, episode.priority, episode.finding_codes) == (
        "open",
        "urgent",
        ("new-back-pain",),
    )
    change = episode.priority_history[-1]
    assert (change.from_priority, change.to_priority, change.at) == ("stat", "urgent", day(1))
    assert "Condition/neuro1" in change.reason and "withdrawn" in change.reason
    flag = plan.writes[0].resource
    assert _history(flag)[-1]["reason"] == change.reason
    assert extensions(flag, ALERT_PRIORITY_URL)[0]["valueCode"] == "urgent"
    revoked, new = plan.writes[1].resource, plan.writes[2].resource
    assert revoked["status"] == "revoked" and "Condition/neuro1" in revoked["note"][-1]["text"]
    assert new["priority"] == "urgent"
    assert [r["reference"] for r in new["reasonReference"]] == ["Condition/bp1"]
    assert "Priority lowered from stat to urgent." in new["payload"][0]["contentString"]


def test_retracting_evidence_the_open_request_never_cited_only_updates_the_flag() -> None:
    patient = _opened(back_pain("Condition/bp1", day(-3)))
    both = replace(
        back_pain("Condition/bp1", day(-3)),
        evidence=(
            *back_pain("Condition/bp1", day(-3)).evidence,
            *back_pain("Condition/bp2", day(0)).evidence,
        ),
    )
    patient.evaluate(assess(both, at=day(1)), day(1))  # bp2 joins the Flag only
    patient.store.delete("Condition/bp2")
    _, plan = patient.evaluate(assess(back_pain("Condition/bp1", day(-3)), at=day(2)), day(2))
    assert plan.events == ("retracted",)
    assert [w.resource_type for w in plan.writes] == ["Flag"]
    assert plan.episode is not None and plan.episode.evidence_refs == {"Condition/bp1"}


def test_losing_eligibility_retracts_with_a_reason_that_says_so() -> None:
    patient = _opened(rising_calcium())
    _, plan = patient.evaluate(assess(at=day(1), eligible=False), day(1))
    assert "no breast-cancer history" in (plan.episode.closed_reason or "")


def test_a_known_bone_metastasis_retracts_the_findings_it_suppresses() -> None:
    patient = _opened(rising_alp(), mscc())
    _, plan = patient.evaluate(assess(mscc(), at=day(1), known_bone_metastasis=True), day(1))
    episode = plan.episode
    assert episode is not None and episode.finding_codes == ("suspected-mscc",)
    assert episode.priority == "stat"
    assert plan.events == ("retracted", "superseded")
    revoked = plan.writes[1].resource
    assert "a bone metastasis is now recorded as known" in revoked["note"][-1]["text"]


# --- contract checks ---------------------------------------------------------------------------


def test_a_closed_episode_counts_as_none() -> None:
    patient = _opened(back_pain())
    episode = patient.open_episode
    assert episode is not None
    closed = replace(episode, status="closed", closed_at=day(1))
    plan = decide(
        assess(), closed, [], now=day(1), config=CONFIG, retracted=frozenset(), new_id=Ids()
    )
    assert plan.is_empty


def test_deciding_on_an_ended_flag_is_a_caller_error() -> None:
    patient = _opened(back_pain())
    patient.store.nurse_sets_status("Flag/id-2", "inactive")
    episode = patient.open_episode
    with pytest.raises(ValueError, match="close_if_ended"):
        decide(
            assess(back_pain()),
            episode,
            patient.store.episode_resources(episode),
            now=day(1),
            config=CONFIG,
            retracted=frozenset(),
            new_id=Ids(),
        )


def test_an_episode_of_another_patient_is_refused() -> None:
    patient = _opened(back_pain())
    episode = patient.open_episode
    with pytest.raises(ValueError, match="Patient/other"):
        decide(
            assess(back_pain(), patient="Patient/other"),
            episode,
            patient.store.episode_resources(episode),
            now=day(1),
            config=CONFIG,
            retracted=frozenset(),
            new_id=Ids(),
        )


def test_updates_keep_what_the_service_does_not_own() -> None:
    patient = _opened(back_pain())
    flag = patient.store.get("Flag/id-2")
    flag["extension"].append({"url": "https://hospital.example/ext/ward", "valueString": "B4"})
    flag["encounter"] = {"reference": "Encounter/e1"}
    _, plan = patient.evaluate(assess(back_pain(), mscc(date=day(1)), at=day(1)), day(1))
    updated = plan.writes[0].resource
    assert updated["encounter"] == {"reference": "Encounter/e1"}
    assert extensions(updated, "https://hospital.example/ext/ward") == [
        {"url": "https://hospital.example/ext/ward", "valueString": "B4"}
    ]
    assert updated["period"]["start"] == "2026-11-02T09:00:00Z"


def test_withdrawn_evidence_next_to_aged_out_evidence_keeps_the_finding() -> None:
    patient = Patient()
    patient.evaluate(assess(back_pain("Condition/bp1", day(-20)), at=day(-20)), day(-20))
    both = replace(
        back_pain("Condition/bp2", day(0)),
        evidence=(
            *back_pain("Condition/bp1", day(-20)).evidence,
            *back_pain("Condition/bp2", day(0)).evidence,
        ),
    )
    patient.evaluate(assess(both), day(0))
    # Day 15: bp1 is 35 days old (aged out, kept); bp2 was entered in error (withdrawn).
    patient.store.withdraw("Condition/bp2")
    _, plan = patient.evaluate(assess(at=day(15)), day(15))
    assert plan.events == ("retracted",)
    assert [w.resource_type for w in plan.writes] == ["Flag"]
    episode = plan.episode
    assert episode is not None and episode.status == "open"
    assert episode.evidence_refs == {"Condition/bp1"}
    assert episode.findings[0].date == day(-20)
    assert episode.priority == "urgent"


def test_without_a_priority_reason_the_history_names_the_findings() -> None:
    assessment = replace(assess(rising_alp()), priority_reason="")
    plan = decide(assessment, None, [], now=T0, config=CONFIG, retracted=frozenset(), new_id=Ids())
    assert plan.episode is not None
    reason = plan.episode.priority_history[0].reason
    assert reason == "routine: highest priority among rising alkaline phosphatase (alp) (routine)"
