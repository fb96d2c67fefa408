"""The command-line tools never mislead about the evaluation clock: `evaluate` uses the asOf a
file carries (else now, and says so with where the records fall), accepts a date-only
--as-of and prints a table; `replay` warns when files carry an asOf it does not use; `token`
says which data directory signed it and warns when it had to make a new secret."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
from typer.testing import CliRunner

from service.cli import app as cli
from service.replay.clock import file_clocks, parse_as_of
from service.replay.runner import clock_warning
from tests.conftest import FIXTURES
from tests.e2e.live import Cli, LiveServer

AS_OF = "2026-06-01T12:00:00Z"
GRADE1 = FIXTURES / "24-hypercalcemia-grade1.json"


def _evaluate(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["evaluate", *args])
    return result.exit_code, result.stdout, result.stderr


def _flags(stdout: str) -> list[dict[str, object]]:
    entries = orjson.loads(stdout).get("entry", [])
    return [e["resource"] for e in entries if e["resource"]["resourceType"] == "Flag"]


def test_evaluate_uses_the_as_of_the_file_carries() -> None:
    """Regression: without --as-of a fixture dated months ago gave an empty Bundle, exit 0."""
    code, out, err = _evaluate(str(GRADE1))
    assert code == 0, err
    assert len(_flags(out)) == 2  # fx24 and fx24b: grade-1 hypercalcemia
    assert f"evaluated as of {AS_OF} (the asOf of 1 of 1 file(s))" in err


def test_evaluate_at_now_says_so_and_counts_the_records(tmp_path: Path) -> None:
    lone = tmp_path / "old-data.json"
    shutil.copy(GRADE1, lone)  # no expectation beside it: no asOf
    code, out, err = _evaluate(str(lone))
    assert code == 0
    assert _flags(out) == []
    assert "(now: no --as-of, and the files carry no asOf)" in err
    assert "4 dated record(s): 0 in the last 30 days" in err
    assert "pass --as-of" in err


def test_a_date_only_as_of_means_noon_utc(tmp_path: Path) -> None:
    lone = tmp_path / "old-data.json"
    shutil.copy(GRADE1, lone)
    code, out, err = _evaluate(str(lone), "--as-of", "2026-06-01")
    assert code == 0, err
    assert f"evaluated as of {AS_OF} (--as-of)" in err
    assert len(_flags(out)) == 2
    assert parse_as_of("2026-06-01") == parse_as_of(AS_OF)
    assert _evaluate(str(lone), "--as-of", "2026-02-30")[0] == 2
    assert _evaluate(str(lone), "--as-of", "yesterday")[0] == 2


def test_evaluate_refuses_files_whose_as_of_disagree(tmp_path: Path) -> None:
    sources = {"a": GRADE1, "b": FIXTURES / "25-hypercalcemia-grade2.json"}
    for name, as_of in (("a", AS_OF), ("b", "2027-01-01T12:00:00Z")):
        shutil.copy(sources[name], tmp_path / f"{name}.json")
        (tmp_path / f"{name}.expect.json").write_text(
            orjson.dumps({"asOf": as_of, "patients": []}).decode()
        )
    code, _out, err = _evaluate(str(tmp_path))
    assert code == 2 and "different asOf values" in err
    assert _evaluate(str(tmp_path), "--as-of", AS_OF)[0] == 0


def test_evaluate_table_pairs_each_finding_with_its_evidence() -> None:
    code, out, err = _evaluate(
        str(FIXTURES / "41-combination.json"), "--format", "table", "--as-of", AS_OF
    )
    assert code == 0, err
    assert f"Dry run: alerts as of {AS_OF}" in out
    alp_row = next(line for line in out.splitlines() if "Patient/fx41 " in line)
    assert "new-back-pain" in alp_row and "Condition/fx41-bp-1" in alp_row
    rising = next(line for line in out.splitlines() if "rising-alp" in line)
    assert "Observation/fx41-alp-1" in rising and "Condition/" not in rising
    assert "Patient/fx41b" in out


def test_replay_warning_when_file_clocks_are_not_used() -> None:
    clocks = file_clocks([GRADE1])
    warning = clock_warning(None, clocks)
    assert warning is not None and AS_OF in warning and f"--as-of {AS_OF}" in warning
    assert clock_warning(AS_OF, clocks) is None
    assert clock_warning("2026-06-01", clocks) is None  # the same instant
    other = clock_warning("2030-01-01T00:00:00Z", clocks)
    assert other is not None and "judged as of 2030-01-01T00:00:00Z" in other
    assert clock_warning(None, file_clocks([])) is None


def test_replay_of_fixtures_without_expect_warns_about_their_clock(
    live_server: LiveServer, run_cli: Cli
) -> None:
    # a date-only --as-of is 12:00 UTC that day: the fixture's own clock, so no warning
    quiet = run_cli("replay", str(GRADE1), "--url", live_server.base_url, "--as-of", "2026-06-01")
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    assert "warning" not in quiet.stderr
    assert f"Alerts per patient (as of {AS_OF})" in quiet.stdout
    assert "Observation/fx24-ca-1" in quiet.stdout  # judged at its time: the alert is there
    loud = run_cli("replay", str(GRADE1), "--url", live_server.base_url)
    assert loud.returncode == 0, loud.stdout + loud.stderr
    assert f"carry asOf {AS_OF}" in loud.stderr
    assert "judged at the server's clock (now)" in loud.stderr


def test_token_says_which_data_directory_and_warns_on_a_new_secret(
    run_cli: Cli, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    env = {"ALERTS_DATA_DIR": str(elsewhere), "ALERTS_JWT_SECRET": ""}
    first = run_cli("token", env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count(".") == 2  # stdout is the token alone
    assert "warning: no secret in the data directory" in first.stderr
    assert str(elsewhere.resolve()) in first.stderr
    second = run_cli("token", env=env)
    assert "warning" not in second.stderr
    assert f"the data directory {elsewhere.resolve()}" in second.stderr
    configured = run_cli("token")  # the test's settings set ALERTS_JWT_SECRET
    assert "ALERTS_JWT_SECRET" in configured.stderr and "warning" not in configured.stderr
