"""Escalation with real processes (issue 13): the API on PostgreSQL + Redis, one Celery worker
running beat (`fhir-alerts worker --beat`) and a second plain worker. Short deadlines stand in
for a controllable clock: the real beat drives an unacknowledged alert past its deadline and
exactly one escalation appears; an alert acknowledged in time gets none."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from contract import ESCALATION_URL
from tests.builders import back_pain_story
from tests.e2e.processes import api_server, kill, start
from tests.e2e.test_celery_worker import _alerts, _env, _headers, _wait_backlog

pytestmark = pytest.mark.server

DEADLINE_SECONDS = 8


def _escalations(crs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in crs if c.get("basedOn")]


def test_beat_escalates_an_overdue_alert_once_and_an_acknowledged_one_never(
    tmp_path: Path, pg_database: str | None
) -> None:
    d = DEADLINE_SECONDS
    env = _env(
        tmp_path,
        pg_database,
        ALERTS_ACK_DEADLINES=f"stat={d}s,asap={d}s,urgent={d}s,routine={d}s",
        ALERTS_ESCALATION_INTERVAL_SECONDS="1",
        ALERTS_ESCALATION_RECIPIENT="PractitionerRole/oncall",
    )
    h = _headers(env)
    with_beat = start(["worker", "--concurrency", "1", "--beat"], env, tmp_path / "beat.log")
    plain = start(["worker", "--concurrency", "1"], env, tmp_path / "worker.log")
    try:
        with api_server(env, tmp_path / "api.log") as base:
            for pid in ("esc-late", "esc-acked"):
                r = httpx.post(f"{base}/fhir", json=back_pain_story(pid), headers=h, timeout=30)
                assert r.status_code == 200, r.text
            _wait_backlog(base, h)
            (_flag,), (acked,) = _alerts(base, h, "esc-acked")
            r = httpx.patch(
                f"{base}/fhir/CommunicationRequest/{acked['id']}",
                json=[{"op": "replace", "path": "/status", "value": "completed"}],
                headers={**h, "Content-Type": "application/json-patch+json"},
                timeout=30,
            )
            assert r.status_code == 200, r.text

            deadline = time.monotonic() + 90
            escalations: list[dict[str, Any]] = []
            while time.monotonic() < deadline and not escalations:
                escalations = _escalations(_alerts(base, h, "esc-late")[1])
                time.sleep(0.5)
            assert escalations, (tmp_path / "beat.log").read_text()[-3000:]
            time.sleep(4)  # several more beat ticks: still exactly one
            flags, crs = _alerts(base, h, "esc-late")
            (escalation,) = _escalations(crs)
            assert escalation["priority"] == "asap"
            assert escalation["recipient"] == [{"reference": "PractitionerRole/oncall"}]
            (flag,) = flags
            assert len([e for e in flag["extension"] if e["url"] == ESCALATION_URL]) == 1
            assert [c["status"] for c in _alerts(base, h, "esc-acked")[1]] == ["completed"]
    finally:
        kill(with_beat)
        kill(plain)
