"""Properties: evaluate is a function of the set of records, not of their order or repetition."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.builders.rules import (
    ICD10CM,
    albumin,
    alp,
    back_pain,
    back_pain_obs,
    breast_cancer,
    calcium,
    condition,
    corrected_calcium,
    day_ago,
    ggt,
    ionized,
    neuro,
    pain_score,
    run,
    weight_loss,
)
from workers.rules.records import dedupe
from workers.rules.status import withdrawn

IDS = [f"r{i}" for i in range(12)]  # few ids: the same reference turns up with other content
DAYS = st.integers(min_value=-2, max_value=420)
CLOSE_DAYS = st.sampled_from([0, 1, 2, 3, 5, 29, 30, 31, 60, 100, 365, 366])  # ties and edges


def _lab(draw: st.DrawFn, rid: str, days: int) -> dict[str, Any]:
    kind = draw(st.sampled_from(["ca", "ca-mmol", "cc", "ion", "alb", "alp", "ggt"]))
    if kind == "ca":
        return calcium(rid, draw(st.sampled_from([9.0, 9.5, 10.0, 10.3, 10.5, 11.0, 12.6])), days)
    if kind == "ca-mmol":
        return calcium(rid, draw(st.sampled_from([2.3, 2.62, 3.1])), days, unit="mmol/L")
    if kind == "cc":
        return corrected_calcium(rid, draw(st.sampled_from([9.9, 10.6, 12.0])), days)
    if kind == "ion":
        return ionized(rid, draw(st.sampled_from([1.2, 1.4, 1.7])), days)
    if kind == "alb":
        return albumin(
            rid,
            draw(st.sampled_from([2.5, 3.5, 4.5, 35.0])),
            days,
            unit=draw(st.sampled_from(["g/dL", "g/L", "mmol/L"])),
        )
    if kind == "alp":
        return alp(
            rid,
            draw(st.sampled_from([60.0, 100.0, 150.0, 400.0])),
            days,
            unit=draw(st.sampled_from(["U/L", "IU/L", "ukat/L"])),
        )
    return ggt(rid, draw(st.sampled_from([20.0, 90.0])), days, high=55)


@st.composite
def resource(draw: st.DrawFn) -> dict[str, Any]:
    rid = draw(st.sampled_from(IDS))
    days = draw(st.one_of(DAYS, CLOSE_DAYS))
    kind = draw(
        st.sampled_from(
            ["lab", "lab", "lab", "pain", "pain-obs", "neuro", "weight", "score", "mets", "bc"]
        )
    )
    if kind == "lab":
        res = _lab(draw, rid, days)
    elif kind == "pain":
        res = back_pain(rid, days, draw(st.sampled_from(["M54.5", "M54.6"])), ICD10CM)
    elif kind == "pain-obs":
        res = back_pain_obs(rid, days)
    elif kind == "neuro":
        res = neuro(rid, days)
    elif kind == "weight":
        res = weight_loss(rid, days)
    elif kind == "score":
        res = pain_score(rid, draw(st.sampled_from([0, 2, 3, 5, 8])), days)
    elif kind == "mets":
        res = condition(rid, "C79.51", onset=day_ago(days))
    else:
        res = breast_cancer(rid, onset=day_ago(days))
    version = draw(st.sampled_from([None, "1", "2", "10"]))
    if version is not None:
        res["meta"] = {"versionId": version}
    if draw(st.integers(0, 9)) == 0:
        res["status" if res["resourceType"] == "Observation" else "verificationStatus"] = (
            "entered-in-error"
            if res["resourceType"] == "Observation"
            else {
                # §8: read by code, with or without its system
                "coding": [
                    draw(
                        st.sampled_from(
                            [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/"
                                    "condition-ver-status",
                                    "code": "refuted",
                                },
                                {"code": "refuted"},
                                {"code": "entered-in-error"},
                            ]
                        )
                    )
                ]
            }
        )
    return res


patients = st.lists(resource(), max_size=30).map(lambda rs: [breast_cancer("bc-main"), *rs])
consumed_ids = st.frozensets(
    st.sampled_from([f"{t}/{i}" for t in ("Observation", "Condition") for i in IDS])
)

SETTINGS = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


@SETTINGS
@given(records=patients, consumed=consumed_ids, data=st.data())
def test_order_does_not_matter(
    records: list[dict[str, Any]], consumed: frozenset[str], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(records))
    assert run(*shuffled, consumed=consumed) == run(*records, consumed=consumed)


@SETTINGS
@given(records=patients, consumed=consumed_ids, data=st.data())
def test_feeding_the_same_resources_twice_changes_nothing(
    records: list[dict[str, Any]], consumed: frozenset[str], data: st.DataObject
) -> None:
    twice = data.draw(st.permutations(records + copy.deepcopy(records)))
    assert run(*twice, consumed=consumed) == run(*records, consumed=consumed)


@SETTINGS
@given(records=patients, consumed=consumed_ids)
def test_evaluation_is_repeatable_and_leaves_its_input_alone(
    records: list[dict[str, Any]], consumed: frozenset[str]
) -> None:
    before = copy.deepcopy(records)
    first = run(*records, consumed=consumed)
    assert run(*records, consumed=consumed) == first
    assert records == before


@SETTINGS
@given(records=patients, consumed=consumed_ids)
def test_invariants(records: list[dict[str, Any]], consumed: frozenset[str]) -> None:
    a = run(*records, consumed=consumed)
    assert [f.code for f in a.findings] == sorted({f.code for f in a.findings})
    assert not (a.evidence_refs & consumed)  # consumed records never trigger
    for f in a.findings:
        assert f.evidence, f.code
        assert f.date == max(e.clinical_date for e in f.evidence)
        assert all(e.clinical_date <= a.at for e in (*f.evidence, *f.supporting))
        assert list(f.evidence) == sorted(f.evidence, key=lambda e: (e.clinical_date, e.reference))
    if a.findings:
        top = max(("routine", "urgent", "asap", "stat").index(f.priority) for f in a.findings)
        overall = ("routine", "urgent", "asap", "stat").index(a.priority or "routine")
        assert overall in (top, top + 1)  # one step at most
        if overall > top:
            assert a.priority != "stat"  # never stat by combination alone
    else:
        assert a.priority is None and a.red_flags == ()
    if a.known_bone_metastasis:
        assert {f.code for f in a.findings} <= {"hypercalcemia", "suspected-mscc"}
        assert all((f.grade or 0) >= 2 for f in a.findings if f.code == "hypercalcemia")
    assert list(a.notes) == sorted(set(a.notes))


@SETTINGS
@given(records=patients, consumed=consumed_ids)
def test_withdrawn_records_are_never_evidence(
    records: list[dict[str, Any]], consumed: frozenset[str]
) -> None:
    """Retraction (workers.rules.status.withdrawn) and the rules read a status the same way,
    with or without its system: what the rules cite or use is never what retraction
    withdraws."""
    a = run(*records, consumed=consumed)
    current = dedupe(records, [])
    for f in a.findings:
        for e in (*f.evidence, *f.supporting):
            assert not withdrawn(current[e.reference]), e.reference
