"""The pure parts of replay: expectation files, alert summaries, diffs, and turning files into
Bundles. No server needed."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from contract import FLAG_DETAIL_URL
from service.replay.expectations import (
    AlertSummary,
    ExpectationError,
    Mismatch,
    actual_alerts,
    diff,
    load_expectations,
)
from service.replay.runner import choose_as_of
from service.replay.uploads import FileDone, ReadProblem, Upload, plan, touched_patients
from tests.builders import back_pain_story, patient
from tests.conftest import FIXTURES

FINDING_SYSTEM = "https://fhir-alerts.example.org/fhir/CodeSystem/finding"
SD = "https://fhir-alerts.example.org/fhir/StructureDefinition"


def flag(
    pid: str,
    *,
    status: str = "active",
    red: tuple[str, ...] = (),
    evidence: tuple[str, ...] = (),
    findings: tuple[str, ...] = (),
) -> dict[str, Any]:
    ext: list[dict[str, Any]] = [
        {
            "url": f"{SD}/alert-finding",
            "valueCodeableConcept": {"coding": [{"system": FINDING_SYSTEM, "code": f}]},
        }
        for f in findings
    ]
    ext += [
        {"url": f"{SD}/red-flag", "valueCodeableConcept": {"coding": [{"code": r}]}} for r in red
    ]
    ext += [
        {"url": FLAG_DETAIL_URL, "valueReference": {"reference": e, "display": "x"}}
        for e in evidence
    ]
    return {
        "resourceType": "Flag",
        "id": f"f-{pid}",
        "status": status,
        "subject": {"reference": f"Patient/{pid}"},
        "extension": ext,
    }


def request(
    pid: str, priority: str, codes: tuple[str, ...], authored: str, status: str = "active"
) -> dict[str, Any]:
    return {
        "resourceType": "CommunicationRequest",
        "id": f"cr-{pid}-{authored}",
        "status": status,
        "priority": priority,
        "subject": {"reference": f"Patient/{pid}"},
        "authoredOn": authored,
        "reasonCode": [{"coding": [{"system": FINDING_SYSTEM, "code": c}]} for c in codes],
    }


def test_load_merges_the_fixture_folder() -> None:
    loaded = load_expectations(FIXTURES)
    files = sorted(FIXTURES.glob("*.expect.json"))
    assert len(loaded.files) == len(files)
    assert loaded.single_as_of == "2026-06-01T12:00:00Z"
    fx25 = loaded.patients["Patient/fx25"]
    assert (fx25.alert, fx25.priority, fx25.findings, fx25.red_flags, fx25.evidence) == (
        True,
        "asap",
        frozenset({"hypercalcemia"}),
        frozenset(),
        frozenset({"Observation/fx25-ca-1"}),
    )
    assert fx25.source == "25-hypercalcemia-grade2"
    fx05 = loaded.patients["Patient/fx05"]
    assert (fx05.alert, fx05.priority, fx05.findings) == (False, None, None)
    assert sum(len(json.loads(f.read_text())["patients"]) for f in files) == len(loaded.patients)


def _write(tmp_path: Path, name: str, data: Any) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("patients", "message"),
    [
        ([{"patient": "fx1", "alert": True}], "must be 'Patient/<id>'"),
        ([{"patient": "Patient/a", "alert": "yes"}], "alert: must be true or false"),
        ([{"patient": "Patient/a", "alert": True, "priority": "high"}], "priority: must be one of"),
        ([{"patient": "Patient/a", "alert": True, "findings": "x"}], "findings: must be a list"),
        ([{"patient": "Patient/a", "alert": True, "colour": "red"}], "unknown keys ['colour']"),
    ],
)
def test_bad_expectations_are_refused_with_where(
    tmp_path: Path, patients: Any, message: str
) -> None:
    path = _write(
        tmp_path,
        "x.expect.json",
        {"fixture": "x", "asOf": "2026-06-01T12:00:00Z", "patients": patients},
    )
    with pytest.raises(ExpectationError, match=r"x\.expect\.json: patients\[0\]") as err:
        load_expectations(path)
    assert message in str(err.value)


def test_conflicting_and_missing_expectations(tmp_path: Path) -> None:
    _write(tmp_path, "a.expect.json", {"patients": [{"patient": "Patient/a", "alert": False}]})
    _write(tmp_path, "b.expect.json", {"patients": [{"patient": "Patient/a", "alert": True}]})
    with pytest.raises(ExpectationError, match=r"also expected by a\.expect\.json"):
        load_expectations(tmp_path)
    with pytest.raises(ExpectationError, match="no such file"):
        load_expectations(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExpectationError, match=r"no \*\.expect\.json"):
        load_expectations(tmp_path / "empty")


def test_as_of_comes_from_the_expectations_when_they_agree(tmp_path: Path) -> None:
    loaded = load_expectations(FIXTURES)
    assert choose_as_of(None, loaded) == "2026-06-01T12:00:00Z"
    assert choose_as_of("2030-01-01T00:00:00Z", loaded) == "2030-01-01T00:00:00Z"
    assert choose_as_of(None, None) is None
    _write(tmp_path, "a.expect.json", {"asOf": "2026-06-01T12:00:00Z", "patients": []})
    _write(tmp_path, "b.expect.json", {"asOf": "2027-06-01T12:00:00Z", "patients": []})
    with pytest.raises(ValueError, match="disagree on asOf"):
        choose_as_of(None, load_expectations(tmp_path))
    # a date alone is 12:00 UTC that day (sent to the server with its time)
    assert choose_as_of("2026-06-01", None) == "2026-06-01T12:00:00Z"
    with pytest.raises(ValueError, match="ISO datetime"):
        choose_as_of("June 2026", None)
    with pytest.raises(ValueError, match="ISO datetime"):
        choose_as_of("2026-02-30", None)


def test_actual_alerts_summarises_active_resources() -> None:
    flags = [
        flag(
            "a",
            red=("weight-loss",),
            evidence=("Condition/a-bp", "Observation/a-ca"),
            findings=("new-back-pain",),
        ),
        flag("b", status="inactive", evidence=("Condition/b-bp",)),
        flag("c", findings=("rising-alp",)),
    ]
    requests = [
        request("a", "urgent", ("new-back-pain",), "2026-05-20T10:00:00Z", status="revoked"),
        request("a", "asap", ("new-back-pain", "hypercalcemia"), "2026-05-21T10:00:00Z"),
        request("a", "urgent", ("new-back-pain",), "2026-05-20T12:00:00Z"),
        request("b", "stat", ("suspected-mscc",), "2026-05-21T10:00:00Z", status="completed"),
        # Instants compare as times, not strings: .5 s later, and an hour later in +01:00.
        request("d", "urgent", ("new-back-pain",), "2026-05-21T10:00:00Z"),
        request("d", "asap", ("new-back-pain",), "2026-05-21T10:00:00.5Z"),
        request("d", "routine", ("new-back-pain",), "2026-05-21T10:30:00+01:00"),
    ]
    got = actual_alerts(flags, requests)
    assert set(got) == {"Patient/a", "Patient/c", "Patient/d"}  # b: nothing active
    assert (got["Patient/d"].flags, got["Patient/d"].priority) == (0, "asap")
    a = got["Patient/a"]
    assert (a.flags, a.requests, a.priority) == (1, 2, "asap")  # the newest active request
    assert a.findings == {"new-back-pain", "hypercalcemia"}
    assert a.red_flags == {"weight-loss"} and a.evidence == {"Condition/a-bp", "Observation/a-ca"}
    # No active request (acknowledged): the Flag's own findings, no priority.
    c = got["Patient/c"]
    assert (c.flags, c.requests, c.priority, c.findings) == (1, 0, None, {"rising-alp"})


def test_diff_names_patient_field_expected_and_actual(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "t.expect.json",
        {
            "fixture": "t",
            "patients": [
                {
                    "patient": "Patient/a",
                    "alert": True,
                    "priority": "stat",
                    "findings": ["new-back-pain"],
                    "redFlags": [],
                    "evidence": ["Condition/a-bp"],
                },
                {"patient": "Patient/b", "alert": False},
                {"patient": "Patient/c", "alert": True, "priority": "routine"},
                {"patient": "Patient/d", "alert": True, "findings": ["rising-alp"]},
                {"patient": "Patient/e", "alert": True, "priority": "urgent", "note": "matches"},
            ],
        },
    )
    actual = {
        "Patient/a": AlertSummary(
            "Patient/a",
            1,
            1,
            "urgent",
            frozenset({"new-back-pain", "hypercalcemia"}),
            frozenset({"weight-loss"}),
            frozenset({"Condition/a-bp"}),
        ),
        "Patient/b": AlertSummary("Patient/b", 1, 1, "asap", frozenset({"hypercalcemia"})),
        "Patient/d": AlertSummary("Patient/d", 2, 1, "routine", frozenset({"rising-alp"})),
        "Patient/e": AlertSummary("Patient/e", 1, 1, "urgent", frozenset({"new-back-pain"})),
    }
    assert diff(load_expectations(path), actual) == [
        Mismatch("Patient/a", "priority", "stat", "urgent", "t"),
        Mismatch("Patient/a", "findings", "new-back-pain", "hypercalcemia, new-back-pain", "t"),
        Mismatch("Patient/a", "redFlags", "(none)", "weight-loss", "t"),
        Mismatch(
            "Patient/b",
            "alert",
            "no alert",
            "alert: 1 active Flag(s), 1 active request(s), asap, hypercalcemia",
            "t",
        ),
        Mismatch("Patient/c", "alert", "exactly one active Flag", "no alert", "t"),
        Mismatch(
            "Patient/d",
            "alert",
            "exactly one active Flag",
            "alert: 2 active Flag(s), 1 active request(s), routine, rising-alp",
            "t",
        ),
    ]


# --- uploads ---------------------------------------------------------------------------------


def test_plan_sends_bundles_as_they_are_and_batches_loose_resources(tmp_path: Path) -> None:
    story = back_pain_story("u1")
    (tmp_path / "a.json").write_text(json.dumps(patient("u0")))
    (tmp_path / "b.json").write_text(json.dumps(story))
    lines = [patient(f"n{i}") for i in range(5)] + [{"resourceType": "Patient"}]
    (tmp_path / "c.ndjson.gz").write_bytes(
        gzip.compress("\n".join(json.dumps(x) for x in lines).encode())
    )
    collection = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Patient"}},
            {"resource": patient("k1")},
            {},
        ],
    }
    (tmp_path / "d.json").write_text(json.dumps(collection))
    files = sorted(tmp_path.iterdir())

    events = list(plan(files, batch_size=4))
    uploads = [e for e in events if isinstance(e, Upload)]
    assert [e.path.name for e in events if isinstance(e, FileDone)] == [
        "a.json",
        "b.json",
        "c.ndjson.gz",
        "d.json",
    ]
    # a.json's Patient waits for the next Bundle, which goes exactly as it is.
    assert uploads[0].bundle["type"] == "batch" and uploads[0].origins == ["a.json"]
    assert uploads[0].bundle["entry"][0]["request"] == {"method": "PUT", "url": "Patient/u0"}
    assert uploads[1].bundle == story
    # ndjson lines: batches of 4, PUT with an id, POST without one.
    assert [u.size for u in uploads[2:4]] == [4, 2]
    assert uploads[2].origins[0] == "c.ndjson.gz line 1"
    assert uploads[3].bundle["entry"][-1]["request"] == {"method": "POST", "url": "Patient"}
    # A collection becomes a batch; its fullUrls are kept; an entry without a resource is a problem.
    assert uploads[4].bundle["type"] == "batch"
    assert uploads[4].bundle["entry"][0] == {
        "fullUrl": "urn:uuid:1",
        "resource": {"resourceType": "Patient"},
        "request": {"method": "POST", "url": "Patient"},
    }
    assert [p.where for p in events if isinstance(p, ReadProblem)] == ["d.json entry[2]"]


def test_touched_patients_follow_urn_uuid_references() -> None:
    sent = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:p",
                "resource": {"resourceType": "Patient"},
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "fullUrl": "urn:uuid:o",
                "resource": {"resourceType": "Observation", "subject": {"reference": "urn:uuid:p"}},
                "request": {"method": "POST", "url": "Observation"},
            },
            {
                "resource": {
                    "resourceType": "Condition",
                    "subject": {"reference": "http://x/fhir/Patient/q/_history/2"},
                },
                "request": {"method": "POST", "url": "Condition"},
            },
            {
                "resource": {"resourceType": "Claim", "patient": {"reference": "urn:uuid:p"}},
                "request": {"method": "POST", "url": "Claim"},
            },
            {
                "resource": {"resourceType": "Condition", "subject": {"reference": "Patient/r"}},
                "request": {"method": "POST", "url": "Condition"},
            },
        ],
    }
    answer = {
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": [
            {"response": {"status": "201 Created", "location": "Patient/p1/_history/1"}},
            {"response": {"status": "201 Created", "location": "Observation/o1/_history/1"}},
            {"response": {"status": "201 Created", "location": "Condition/c1/_history/1"}},
            {"response": {"status": "200 OK", "outcome": {"resourceType": "OperationOutcome"}}},
            {"response": {"status": "422", "outcome": {"resourceType": "OperationOutcome"}}},
        ],
    }
    assert touched_patients(sent, answer) == {"Patient/p1", "Patient/q"}


def _paired_flag(pid: str, cited: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """A Flag whose flag-detail references name the findings they support."""
    body = flag(pid, findings=tuple(sorted({c for cs in cited.values() for c in cs})))
    body["extension"] += [
        {
            "url": FLAG_DETAIL_URL,
            "valueReference": {
                "extension": [{"url": f"{SD}/evidence-for", "valueCode": c} for c in codes],
                "reference": ref,
            },
        }
        for ref, codes in cited.items()
    ]
    return body


def test_each_finding_is_paired_with_its_own_evidence() -> None:
    cited = {
        "Observation/p1-alp": ("rising-alp",),
        "Observation/p1-ca": ("hypercalcemia",),
        "Condition/p1-bp": ("new-back-pain",),
    }
    got = actual_alerts([_paired_flag("p1", cited)], [])["Patient/p1"]
    assert got.evidence_of("hypercalcemia") == {"Observation/p1-ca"}
    assert got.evidence_of("rising-alp") == {"Observation/p1-alp"}
    assert got.unpaired_evidence == frozenset()


def test_the_table_prints_each_finding_beside_its_own_evidence() -> None:
    """Regression: the Evidence column used to be sorted apart from Findings, so an ALP
    reference was printed beside "hypercalcemia"."""
    from rich.console import Console

    from service.replay.render import alerts_table

    cited = {"Observation/p1-alp": ("rising-alp",), "Observation/p1-ca": ("hypercalcemia",)}
    summary = actual_alerts([_paired_flag("p1", cited)], [])
    console = Console(width=200, record=True)
    console.print(alerts_table(["Patient/p1"], summary))
    lines = console.export_text().splitlines()
    hyper = next(line for line in lines if "hypercalcemia" in line)
    alp = next(line for line in lines if "rising-alp" in line)
    assert "Observation/p1-ca" in hyper and "Observation/p1-alp" not in hyper
    assert "Observation/p1-alp" in alp and "Observation/p1-ca" not in alp


def test_evidence_without_marks_is_shown_apart() -> None:
    """A Flag written before the evidence-for marks: its evidence is listed, not paired."""
    from rich.console import Console

    from service.replay.render import alerts_table

    summary = actual_alerts(
        [flag("p2", findings=("hypercalcemia",), evidence=("Observation/p2-ca",))], []
    )
    assert summary["Patient/p2"].unpaired_evidence == {"Observation/p2-ca"}
    console = Console(width=200, record=True)
    console.print(alerts_table(["Patient/p2"], summary))
    text = console.export_text()
    hyper = next(line for line in text.splitlines() if "hypercalcemia" in line)
    assert "Observation/p2-ca" not in hyper and "(finding not named)" in text
