"""`ALERTS_RULESET` chooses the rule set the worker and `$evaluate` judge with (issue 11, item 3).

Before, the rule set was whatever `load_config()` found inside the pure code: a deployment could
not choose one, and two apps in one process could not differ.
"""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from contract import RULESET_VERSION_URL
from service.config import Settings
from tests.builders import back_pain_story
from tests.conftest import wait_idle
from workers.rules import RULESET_VERSION


def _custom_ruleset(tmp_path: Path) -> Path:
    """The shipped rule set with its own version, and new back pain at `asap`."""
    target = tmp_path / "rules"
    shutil.copytree(str(resources.files("ruleset.data")), target)
    data = json.loads((target / "ruleset-v1.json").read_text())
    data["version"] = "bone-mets-custom"
    data["priorities"]["new-back-pain"] = "asap"
    path = target / "custom.json"
    path.write_text(json.dumps(data))
    return path


def _ruleset_version(flag: dict[str, Any]) -> str:
    return next(e["valueString"] for e in flag["extension"] if e["url"] == RULESET_VERSION_URL)


def _alerts(client: TestClient, headers: dict[str, str], pid: str) -> tuple[dict[str, Any], ...]:
    found = []
    for rtype in ("Flag", "CommunicationRequest"):
        r = client.get(f"/fhir/{rtype}?patient={pid}", headers=headers)
        assert r.status_code == 200, r.text
        entries = r.json().get("entry", [])
        assert len(entries) == 1, entries
        found.append(entries[0]["resource"])
    return tuple(found)


def test_the_worker_and_the_dry_run_judge_with_the_configured_rule_set(
    settings: Settings, headers: dict[str, str], tmp_path: Path
) -> None:
    from workers.embedded import build_app

    custom = settings.model_copy(update={"ruleset": _custom_ruleset(tmp_path)})
    with TestClient(build_app(custom)) as client:
        r = client.post("/fhir", json=back_pain_story("rs1"), headers=headers)
        assert r.status_code == 200, r.text
        wait_idle(client, headers)
        flag, request = _alerts(client, headers, "rs1")
        assert _ruleset_version(flag) == "bone-mets-custom"
        assert request["priority"] == "asap"

        dry = client.post("/fhir/$evaluate", json=back_pain_story("rs2"), headers=headers)
        assert dry.status_code == 200, dry.text
        written = {e["resource"]["resourceType"]: e["resource"] for e in dry.json()["entry"]}
        assert _ruleset_version(written["Flag"]) == "bone-mets-custom"
        assert written["CommunicationRequest"]["priority"] == "asap"


def test_unset_is_the_shipped_rule_set(client: TestClient, headers: dict[str, str]) -> None:
    r = client.post("/fhir", json=back_pain_story("rs3"), headers=headers)
    assert r.status_code == 200, r.text
    wait_idle(client, headers)
    flag, request = _alerts(client, headers, "rs3")
    assert _ruleset_version(flag) == RULESET_VERSION
    assert request["priority"] == "urgent"


def test_the_setting_is_read_from_the_environment_and_must_name_a_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = _custom_ruleset(tmp_path)
    monkeypatch.setenv("ALERTS_RULESET", str(path))
    assert Settings().ruleset == path
    monkeypatch.setenv("ALERTS_RULESET", str(tmp_path / "missing.json"))
    with pytest.raises(ValidationError, match="ALERTS_RULESET"):
        Settings()
    monkeypatch.setenv("ALERTS_RULESET", "")
    assert Settings().ruleset is None
