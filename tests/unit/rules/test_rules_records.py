"""What counts as a record (clinical-rules.md §2): statuses, clinical dates, duplicates, T."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tests.builders.rules import (
    ICD10CM,
    SNOMED,
    T,
    ago,
    back_pain,
    back_pain_obs,
    breast_cancer,
    calcium,
    codes,
    coding,
    condition,
    day_ago,
    finding,
    observation,
    run,
)
from workers.rules import load_config
from workers.rules.dates import parse_fhir_datetime
from workers.rules.records import collect

CONFIG = load_config()


# -- dates ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024", datetime(2024, 1, 1, tzinfo=UTC)),
        ("2024-05", datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024-05-17", datetime(2024, 5, 17, tzinfo=UTC)),
        ("2024-05-17T10:30:00Z", datetime(2024, 5, 17, 10, 30, tzinfo=UTC)),
        ("2024-05-17T10:30:00", datetime(2024, 5, 17, 10, 30, tzinfo=UTC)),  # no zone = UTC
        ("2024-05-17T10:30:00.123+02:00", datetime(2024, 5, 17, 8, 30, 0, 123000, tzinfo=UTC)),
        ("2024-05-17T23:30:00-05:00", datetime(2024, 5, 18, 4, 30, tzinfo=UTC)),
    ],
)
def test_fhir_dates_parse_to_utc(text: str, expected: datetime) -> None:
    parsed = parse_fhir_datetime(text)
    assert parsed == expected
    assert parsed is not None and parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", ["", "yesterday", "2024-13", "2024-02-30", "20240517", "24-05-17"])
def test_unusable_dates(text: str) -> None:
    assert parse_fhir_datetime(text) is None


def test_partial_dates_stand_for_the_start_of_their_period() -> None:
    a = run(breast_cancer(onset="2019"), back_pain("bp", 5))
    assert "since 2019-01-01" in finding(a, "new-back-pain").reason


def _event_date(resource: dict[str, object]) -> datetime | None:
    records = collect([resource], T, CONFIG)
    events = [e for group in records.events.values() for e in group]
    return events[0].date if events else None


def test_condition_date_is_onset_datetime() -> None:
    c = back_pain("bp", 3)
    c["recordedDate"] = day_ago(1)
    assert _event_date(c) == datetime.fromisoformat(day_ago(3)).replace(tzinfo=UTC)


def test_condition_date_is_onset_period_start() -> None:
    c = condition("bp", "M54.5", onsetPeriod={"start": day_ago(4), "end": day_ago(1)})
    assert _event_date(c) == datetime.fromisoformat(day_ago(4)).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    "onset",
    [
        {"onsetAge": {"value": 60, "unit": "a"}},
        {"onsetString": "last spring"},
        {"onsetPeriod": {"end": "2026-10-01"}},
        {"onsetDateTime": "not a date"},
    ],
)
def test_unusable_onset_falls_back_to_recorded_date(onset: dict[str, object]) -> None:
    c = condition("bp", "M54.5", recordedDate=day_ago(2), **onset)
    assert _event_date(c) == datetime.fromisoformat(day_ago(2)).replace(tzinfo=UTC)


def test_observation_date_is_effective_then_period_start_then_instant_then_issued() -> None:
    base = back_pain_obs("o", 0)
    del base["effectiveDateTime"]
    assert _event_date({**base, "effectiveDateTime": ago(1), "issued": ago(0)}) == T - timedelta(1)
    assert _event_date({**base, "effectivePeriod": {"start": ago(2)}}) == T - timedelta(2)
    assert _event_date({**base, "effectiveInstant": ago(3)}) == T - timedelta(3)
    assert _event_date({**base, "issued": ago(4)}) == T - timedelta(4)
    assert _event_date({**base, "effectiveTiming": {"event": [ago(5)]}, "issued": ago(6)}) == (
        T - timedelta(6)
    )


def test_record_without_usable_date_is_skipped_with_a_note() -> None:
    pain = condition("bp", "M54.5")
    lab = observation("ca", "17861-6", value=14.0, unit="mg/dL")
    a = run(breast_cancer(), pain, lab)
    assert a.findings == ()
    assert a.notes == (
        "Condition/bp: no usable clinical date; skipped",
        "Observation/ca: no usable clinical date; skipped",
    )


def test_undated_breast_cancer_still_makes_eligible() -> None:
    a = run(condition("bc", "Z85.3"), back_pain("bp", 3))
    assert a.eligible
    assert codes(a) == ["new-back-pain"]  # no known first date: no date restriction
    assert a.notes == ("Condition/bc: no usable clinical date; used for history only",)


def test_irrelevant_records_without_dates_make_no_note() -> None:
    a = run(breast_cancer(), observation("hr", "8867-4", value=70, unit="/min"))
    assert a.notes == ()


# -- statuses ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["final", "amended", "corrected", "preliminary"])
def test_observation_statuses_that_count(status: str) -> None:
    a = run(breast_cancer(), calcium("ca", 12.0, status=status))
    assert codes(a) == ["hypercalcemia"]


@pytest.mark.parametrize("status", ["cancelled", "entered-in-error", "registered", "unknown", None])
def test_observation_statuses_that_do_not_count(status: str | None) -> None:
    resource = calcium("ca", 12.0)
    if status is None:
        del resource["status"]
    else:
        resource["status"] = status
    assert run(breast_cancer(), resource).findings == ()


@pytest.mark.parametrize("verification", ["refuted", "entered-in-error"])
def test_refuted_conditions_do_not_count(verification: str) -> None:
    assert run(breast_cancer(verification=verification)).eligible is False
    a = run(breast_cancer(), condition("bp", "M54.5", onset=day_ago(1), verification=verification))
    assert a.findings == ()


@pytest.mark.parametrize("verification", ["confirmed", "unconfirmed", "provisional", None])
def test_other_verification_statuses_count(verification: str | None) -> None:
    assert run(breast_cancer(verification=verification)).eligible is True


def test_verification_status_must_use_the_hl7_system() -> None:
    bc = breast_cancer()
    bc["verificationStatus"] = coding("http://example.org/local", "refuted")
    assert run(bc).eligible is True


@pytest.mark.parametrize("clinical", ["active", "recurrence", "remission", "resolved", "inactive"])
def test_any_clinical_status_counts_for_history(clinical: str) -> None:
    bc = breast_cancer(
        clinicalStatus=coding("http://terminology.hl7.org/CodeSystem/condition-clinical", clinical)
    )
    assert run(bc).eligible is True


# -- symptom observations --------------------------------------------------------------------


def test_symptom_observation_counts_by_code() -> None:
    assert codes(run(breast_cancer(), back_pain_obs("o", 2))) == ["new-back-pain"]


def test_symptom_observation_counts_by_value_codeable_concept() -> None:
    o = observation(
        "o",
        "75325-1",  # LOINC "Symptom"
        when=ago(2),
        valueCodeableConcept=coding(ICD10CM, "M54.50"),
    )
    assert codes(run(breast_cancer(), o)) == ["new-back-pain"]


def test_value_boolean_false_means_absent() -> None:
    assert run(breast_cancer(), back_pain_obs("o", 2, valueBoolean=False)).findings == ()
    assert codes(run(breast_cancer(), back_pain_obs("o", 2, valueBoolean=True))) == [
        "new-back-pain"
    ]


def test_absent_symptom_does_not_count_as_history_either() -> None:
    a = run(breast_cancer(), back_pain_obs("old", 100, valueBoolean=False), back_pain("bp", 2))
    assert codes(a) == ["new-back-pain"]


def test_other_resource_types_are_ignored() -> None:
    a = run(
        breast_cancer(),
        {"resourceType": "Patient", "id": "p1"},
        {"resourceType": "Procedure", "id": "x", "code": coding(SNOMED, "161891005")},
        {"resourceType": "Claim", "id": "c"},
    )
    assert a.findings == () and a.notes == ()


# -- duplicates and versions ------------------------------------------------------------------


def test_same_reference_twice_counts_once() -> None:
    a = run(breast_cancer(), back_pain("bp", 2), back_pain("bp", 2))
    assert [e.reference for e in finding(a, "new-back-pain").evidence] == ["Condition/bp"]


def test_highest_version_wins_whatever_the_order() -> None:
    v1 = calcium("ca", 12.0, meta={"versionId": "1"})
    v2 = calcium("ca", 9.0, meta={"versionId": "2"})
    v10 = calcium("ca", 12.8, meta={"versionId": "10"})  # numeric, not text, order
    for order in ([v1, v2, v10], [v10, v2, v1], [v2, v10, v1]):
        assert finding(run(breast_cancer(), *order), "hypercalcemia").grade == 3


def test_a_newer_retracting_version_removes_the_record() -> None:
    v1 = calcium("ca", 12.0, meta={"versionId": "1"})
    v2 = calcium("ca", 12.0, meta={"versionId": "2"}, status="entered-in-error")
    assert run(breast_cancer(), v2, v1).findings == ()


def test_resource_without_id_is_skipped_with_a_note() -> None:
    lab = calcium("x", 12.0)
    del lab["id"]
    a = run(breast_cancer(), lab)
    assert a.findings == () and a.notes == ("Observation without an id: skipped",)


def test_malformed_resources_never_crash() -> None:
    a = run(
        breast_cancer(),
        {"resourceType": "Observation", "id": "a", "status": "final", "code": "17861-6"},
        {"resourceType": "Observation", "id": "b", "status": "final", "code": {"coding": "x"}},
        {"resourceType": "Condition", "id": "c", "code": {"coding": [["M54.5"]]}},
        {"resourceType": "Condition", "id": "d", "verificationStatus": "refuted"},
        {
            "resourceType": "Observation",
            "id": "e",
            "status": "final",
            "code": coding("http://loinc.org", "17861-6"),
            "effectiveDateTime": ago(0),
            "valueQuantity": {"value": "12.0", "unit": "mg/dL"},
        },
        {
            "resourceType": "Observation",
            "id": "f",
            "status": "final",
            "code": coding("http://loinc.org", "17861-6"),
            "effectiveDateTime": ago(0),
            "valueQuantity": {"value": float("nan"), "unit": "mg/dL"},
        },
        "not a resource",  # type: ignore[arg-type]
    )
    assert a.eligible and a.findings == ()
    assert "Observation/e: no numeric value; skipped" in a.notes
    assert "Observation/f: no numeric value; skipped" in a.notes
    assert all(note.split(":")[0].count("/") == 1 for note in a.notes)


# -- evaluation as of T -----------------------------------------------------------------------


def test_records_dated_after_t_are_ignored() -> None:
    a = run(breast_cancer(), calcium("future", 13.0, days=-1), back_pain("bp", -2))
    assert a.findings == ()


def test_breast_cancer_dated_after_t_does_not_make_eligible_at_t() -> None:
    assert run(breast_cancer(onset=day_ago(-3))).eligible is False


def test_evaluation_time_without_zone_is_utc_and_other_zones_convert() -> None:
    naive = run(breast_cancer(), calcium("ca", 12.0), at=T.replace(tzinfo=None))
    assert naive.at == T and codes(naive) == ["hypercalcemia"]
    shifted = run(breast_cancer(), at=T.astimezone(timezone(timedelta(hours=5))))
    assert shifted.at == T and shifted.at.utcoffset() == timedelta(0)
