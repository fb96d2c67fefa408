"""`fhir-alerts replay` end to end: the real command line in a subprocess against a real server
(uvicorn on a loopback port, in-process worker), judged by the scenario fixtures' expectations."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.builders import back_pain_story, lab, patient
from tests.conftest import FIXTURES
from tests.e2e.live import Cli, LiveServer

AS_OF = "2026-06-01T12:00:00Z"


def _rows(stdout: str, *words: str) -> list[str]:
    return [line for line in stdout.splitlines() if all(w in line for w in words)]


def test_fixtures_replay_matches_their_expectations_twice(
    live_server: LiveServer, run_cli: Cli
) -> None:
    """The whole fixture folder, no --token (minted from the same configuration) and no --as-of
    (taken from the expectation files): every expectation is met, and a second replay of the
    same PUT bundles prints exactly the same table."""
    first = run_cli(
        "replay", str(FIXTURES), "--url", live_server.base_url, "--expect", str(FIXTURES)
    )
    assert first.returncode == 0, first.stdout + first.stderr
    expected_patients = sum(
        len(json.loads(p.read_text())["patients"]) for p in FIXTURES.glob("*.expect.json")
    )
    assert f"{expected_patients} checked against expectations, all match" in first.stdout
    assert f"Alerts per patient (as of {AS_OF})" in first.stdout
    # A row of the table: patient, priority, findings and evidence as the fixture says.
    assert _rows(
        first.stdout, "Patient/fx25 ", "yes", "asap", "hypercalcemia", "Observation/fx25-ca-1"
    )
    assert _rows(first.stdout, "Patient/fx05 ", "no")
    assert "resources/s" in first.stderr

    second = run_cli(
        "replay", str(FIXTURES), "--url", live_server.base_url, "--expect", str(FIXTURES)
    )
    assert second.returncode == 0, second.stdout + second.stderr
    assert second.stdout == first.stdout


def test_a_changed_expectation_fails_with_a_readable_diff(
    live_server: LiveServer, run_cli: Cli, tmp_path: Path
) -> None:
    name = "25-hypercalcemia-grade2"
    expect = json.loads((FIXTURES / f"{name}.expect.json").read_text())
    assert expect["patients"][0]["patient"] == "Patient/fx25"
    assert expect["patients"][0]["priority"] == "asap"
    expect["patients"][0]["priority"] = "stat"
    expect["patients"][1]["findings"] = ["hypercalcemia", "rising-alp"]
    changed = tmp_path / f"{name}.expect.json"
    changed.write_text(json.dumps(expect))

    r = run_cli(
        "replay",
        str(FIXTURES / f"{name}.json"),
        "--url",
        live_server.base_url,
        "--expect",
        str(changed),
    )
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Differences from the expected alerts" in r.stdout
    # One row per difference: fixture, patient, field, expected, actual.
    assert _rows(r.stdout, name, "Patient/fx25 ", "priority", "stat", "asap")
    assert _rows(r.stdout, name, "Patient/fx25b", "findings", "hypercalcemia, rising-alp")
    assert "2 difference(s) in 2 patient(s)" in r.stdout


def test_rejected_files_are_reported_and_the_rest_still_goes(
    live_server: LiveServer, run_cli: Cli, tmp_path: Path
) -> None:
    data = tmp_path / "input"  # (tmp_path / "data" is the server's data dir)
    data.mkdir()
    bad = back_pain_story("rj1")
    bad["entry"][1]["resource"]["clinicalStatus"]["coding"][0]["code"] = "bogus"
    (data / "a-rejected.json").write_text(json.dumps(bad))
    (data / "b-good.json").write_text(json.dumps(back_pain_story("rj2")))
    (data / "c-lines.ndjson").write_text(
        "\n".join(
            [
                json.dumps(patient("rj3")),
                "{not json",
                json.dumps(
                    lab("rj3-ca", "rj3", "17861-6", 9.4, "mg/dL", "2026-05-25", status="nope")
                ),
                json.dumps({"resourceType": "Claim", "status": "active"}),  # skipped, not an error
            ]
        )
    )

    r = run_cli("replay", str(data), "--url", live_server.base_url)
    assert r.returncode == 1, r.stdout + r.stderr
    err = " ".join(r.stderr.split())
    # The transaction's own OperationOutcome diagnostics, naming the entry.
    assert (
        "rejected a-rejected.json: 422: Bundle.entry[1]: Condition.clinicalStatus: unknown code"
        in err
    )
    assert "rejected c-lines.ndjson line 2: not valid JSON" in err
    assert "rejected c-lines.ndjson line 3: 422:" in err
    assert "Observation.status: code is not in the required value set" in err
    assert "3 rejected file(s) or entries" in err
    # The good bundle and the good line went through and were evaluated.
    assert _rows(r.stdout, "Patient/rj2", "yes", "urgent", "new-back-pain")
    assert _rows(r.stdout, "Patient/rj3", "no")
    assert not _rows(r.stdout, "Patient/rj1")


def test_replay_reads_collections_ndjson_and_gzip(
    live_server: LiveServer, run_cli: Cli, tmp_path: Path
) -> None:
    """A collection Bundle becomes a batch (PUT Type/id), loose resources go in batches."""
    import gzip

    data = tmp_path / "input"
    data.mkdir()
    story = back_pain_story("cg1")
    collection = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": e["fullUrl"], "resource": e["resource"]} for e in story["entry"]],
    }
    (data / "collection.json.gz").write_bytes(gzip.compress(json.dumps(collection).encode()))
    lines = [json.dumps(e["resource"]) for e in back_pain_story("cg2")["entry"]]
    (data / "story.ndjson").write_text("\n".join(lines) + "\n")

    r = run_cli("replay", str(data), "--url", live_server.base_url, "--batch-size", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    assert _rows(r.stdout, "Patient/cg1", "yes", "urgent", "new-back-pain", "Condition/cg1-bp")
    assert _rows(r.stdout, "Patient/cg2", "yes", "urgent", "new-back-pain", "Condition/cg2-bp")


def test_usage_errors_exit_2(live_server: LiveServer, run_cli: Cli, tmp_path: Path) -> None:
    one = str(FIXTURES / "12-new-back-pain-snomed.json")
    r = run_cli("replay", one, "--url", live_server.base_url, "--as-of", "2026-06-31")
    assert r.returncode == 2
    assert "asOf must be an ISO datetime" in " ".join(r.stderr.split())

    other = json.loads((FIXTURES / "12-new-back-pain-snomed.expect.json").read_text())
    other["asOf"] = "2027-01-01T00:00:00Z"
    (tmp_path / "a.expect.json").write_text(json.dumps(other))
    shutil.copy(FIXTURES / "13-new-back-pain-icd10cm.expect.json", tmp_path / "b.expect.json")
    r = run_cli("replay", one, "--url", live_server.base_url, "--expect", str(tmp_path))
    assert r.returncode == 2
    assert "disagree on asOf" in " ".join(r.stderr.split())

    r = run_cli("replay", str(tmp_path / "missing.json"), "--url", live_server.base_url)
    assert r.returncode == 2
    assert "no such file or folder" in r.stderr

    r = run_cli("replay", one, "--url", live_server.base_url, "--token", "not-a-token")
    assert r.returncode == 2
    assert "(401)" in r.stderr and "The bearer token is not valid" in r.stderr


def test_one_fixture_against_the_whole_expectation_folder(
    live_server: LiveServer, run_cli: Cli, tmp_path: Path
) -> None:
    """Only the patients the replay stored are judged; the rest of the folder is counted. Data
    with none of the expected patients in it fails rather than passing vacuously."""
    one = FIXTURES / "22-suspected-mscc.json"
    total = sum(len(json.loads(p.read_text())["patients"]) for p in FIXTURES.glob("*.expect.json"))
    r = run_cli("replay", str(one), "--url", live_server.base_url, "--expect", str(FIXTURES))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "4 patient(s), 3 with an active alert; 4 checked against expectations, all match" in (
        r.stdout
    )
    assert f"{total - 4} expected patient(s) were not in the replayed data" in r.stderr
    assert _rows(r.stdout, "Patient/fx22 ", "stat", "new-back-pain")  # one finding per line

    stranger = tmp_path / "input"
    stranger.mkdir()
    (stranger / "story.json").write_text(json.dumps(back_pain_story("nobody-expects")))
    r = run_cli("replay", str(stranger), "--url", live_server.base_url, "--expect", str(FIXTURES))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "none of the expected patients was in the replayed data" in r.stderr
