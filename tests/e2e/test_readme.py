"""The README's curl walk-through, run as written against a live `fhir-alerts serve`."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import httpx

from service.auth import mint
from tests.e2e.processes import api_server

ROOT = Path(__file__).resolve().parents[2]


def _walkthrough() -> str:
    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- walkthrough:start -->", 1)[1].split("<!-- walkthrough:end -->", 1)[0]
    match = re.search(r"```bash\n(.*?)```", block, re.S)
    assert match, "the README walk-through block is missing"
    return match.group(1)


def test_readme_first_command_and_walkthrough(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    first = re.findall(r"```bash\n(.*?)\n```", readme, re.S)[0]
    assert first.endswith("fhir-alerts serve") and "pip install -e ." in first
    assert "bash scripts/test.sh" in re.findall(r"```bash\n(.*?)\n```", readme, re.S)[1]
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()

    env = {"ALERTS_DATA_DIR": str(tmp_path / "data"), "ALERTS_BROKER_URL": ""}
    env_clean = {k: v for k, v in os.environ.items() if not k.startswith("ALERTS_")}
    with api_server({**env_clean, **env}, tmp_path / "api.log") as base:
        script = _walkthrough()
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=ROOT,
            env={**env_clean, **env, "BASE": base},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr + result.stdout
        lines = result.stdout.strip().splitlines()
        assert lines[0].startswith("urgent - "), result.stdout
        assert lines[-1] == "completed"
        # Posting the same Bundle again adds nothing.
        again = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script.split("# 3.")[0] + "\n"],
            cwd=ROOT,
            env={**env_clean, **env, "BASE": base},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert again.returncode == 0, again.stderr
        secret = (tmp_path / "data" / "jwt-secret").read_text().strip()
        h = {"Authorization": f"Bearer {mint(secret)}"}
        pid = httpx.get(f"{base}/fhir/Patient?identifier=urn:example:mrn|WT-1", headers=h).json()[
            "entry"
        ][0]["resource"]["id"]
        flags = httpx.get(f"{base}/fhir/Flag?patient={pid}", headers=h).json()
        requests = httpx.get(f"{base}/fhir/CommunicationRequest?patient={pid}", headers=h).json()
        assert flags["total"] == 1 and requests["total"] == 1


def test_readme_replay_example(tmp_path: Path) -> None:
    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- replay:start -->", 1)[1].split("<!-- replay:end -->", 1)[0]
    match = re.search(r"```bash\n(.*?)```", block, re.S)
    assert match
    env_clean = {k: v for k, v in os.environ.items() if not k.startswith("ALERTS_")}
    env = {**env_clean, "ALERTS_DATA_DIR": str(tmp_path / "data")}
    with api_server(env, tmp_path / "api.log") as base:
        for _ in range(2):  # replaying twice gives the same result
            result = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", match.group(1)],
                cwd=ROOT,
                env={**env, "BASE": base},
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
            assert "all match" in result.stdout + result.stderr
