"""Tasks run with the Settings of the app that dispatched them (issue 11, item 3).

Before, the embedded bootstrap wrote its Settings into module globals of the task modules
(`configure()`): a second app in the same process overwrote them, and the first app's
evaluations then ran against the second app's database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.config import Settings
from tests.builders import back_pain_story
from tests.conftest import wait_idle


def _flags(client: TestClient, headers: dict[str, str], pid: str) -> int:
    r = client.get(f"/fhir/Flag?patient={pid}", headers=headers)
    assert r.status_code == 200, r.text
    return len(r.json().get("entry", []))


def test_two_apps_in_one_process_each_evaluate_into_their_own_database(
    settings: Settings, headers: dict[str, str], tmp_path: Path
) -> None:
    from workers.embedded import build_app

    other = settings.model_copy(update={"data_dir": tmp_path / "other", "database_url": None})
    first_app = build_app(settings)
    second_app = build_app(other)  # built last: under module globals, its settings won
    with TestClient(first_app) as first, TestClient(second_app) as second:
        assert first.post("/fhir", json=back_pain_story("a1"), headers=headers).status_code == 200
        wait_idle(first, headers)
        assert second.post("/fhir", json=back_pain_story("b1"), headers=headers).status_code == 200
        wait_idle(second, headers)
        assert (_flags(first, headers, "a1"), _flags(first, headers, "b1")) == (1, 0)
        assert (_flags(second, headers, "a1"), _flags(second, headers, "b1")) == (0, 1)


def test_a_retried_in_process_evaluation_keeps_its_apps_settings(
    settings: Settings, headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The settings travel with the task call, so Celery's retry (same arguments) has them too:
    a retry never falls back to the environment's database."""
    from workers import evaluation, tasks
    from workers.embedded import build_app

    seen: list[str] = []
    run = evaluation.evaluate_patient

    def conflicting_once(factory: Any, patient_id: str, *, settings: Settings, **kw: Any) -> Any:
        seen.append(settings.resolved_database_url)
        if len(seen) == 1:  # a nurse changed the alert meanwhile: the task retries
            raise evaluation.VersionConflict("Flag/x")
        return run(factory, patient_id, settings=settings, **kw)

    monkeypatch.setattr(tasks, "run_evaluation", conflicting_once)
    with TestClient(build_app(settings)) as client:
        assert client.post("/fhir", json=back_pain_story("r1"), headers=headers).status_code == 200
        wait_idle(client, headers)
        assert _flags(client, headers, "r1") == 1
    assert seen == [settings.resolved_database_url] * 2
