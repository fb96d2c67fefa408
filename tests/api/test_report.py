"""The alert-burden report (issue 13): `GET /ops/report` and `fhir-alerts report` checked
against a seeded data set whose figures are worked out by hand below.

Seeded with the production episode logic (tests.builders.findings) and written into the real
database with controlled store times, so every duration is exact:

| patient | findings                     | priority | request outcome                 |
|---------|------------------------------|----------|---------------------------------|
| rp1     | new-back-pain                | urgent   | acknowledged after 30 min       |
| rp2     | new-back-pain                | urgent   | acknowledged after 2 h          |
| rp3     | new-back-pain                | urgent   | dismissed (duplicate) after 10 h|
| rp4     | suspected-mscc, new-back-pain| stat     | acknowledged after 5 min        |
| rp5     | rising-calcium               | routine  | still open; escalated (urgent)  |

Ten patients evaluated (five without alerts): 5 alerts → 500.0 per 1,000.
Urgent waits 1800, 7200, 36000 s: median 7200, p90 (nearest rank: 3rd of 3) 36000.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from contract import ESCALATION_IDENTIFIER_SYSTEM
from service.alert_changes import dismissed
from service.auth import mint
from service.config import Settings
from service.report import build_report
from service.store import episodes as episode_store
from service.store import resources as store
from service.store.db import session_factory, transaction
from service.store.models import PatientLock
from tests.builders.findings import T0, Ids, Patient, assess, back_pain, mscc, rising_calcium

EXPECTED: dict[str, Any] = {
    "alerts": {
        "total": 5,
        "open": 5,
        "by_priority": {"routine": 1, "urgent": 3, "asap": 0, "stat": 1},
        "by_finding": {
            "new-back-pain": 4,
            "suspected-mscc": 1,
            "hypercalcemia": 0,
            "rising-calcium": 1,
            "rising-alp": 0,
        },
    },
    "time_to_acknowledge_seconds": {
        "routine": {"acknowledged": 0, "unacknowledged": 1, "median": None, "p90": None},
        "urgent": {"acknowledged": 3, "unacknowledged": 0, "median": 7200.0, "p90": 36000.0},
        "asap": {"acknowledged": 0, "unacknowledged": 0, "median": None, "p90": None},
        "stat": {"acknowledged": 1, "unacknowledged": 0, "median": 300.0, "p90": 300.0},
    },
    "escalations": {"total": 1, "by_priority": {"routine": 0, "urgent": 1, "asap": 0, "stat": 0}},
    "dismiss_reasons": {
        "already-known": 0,
        "not-clinically-relevant": 0,
        "duplicate": 1,
        "patient-deceased": 0,
        "patient-transferred": 0,
        "other": 0,
    },
    "patients_evaluated": 10,
    "alerts_per_1000_patients_evaluated": 500.0,
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The seeded alerts are weeks old: keep the embedded deadline sweep from escalating them.
    return settings.model_copy(update={"escalation_interval_seconds": 0})


def _seed(settings: Settings) -> None:
    from service.store.migrate import upgrade

    upgrade(settings.resolved_database_url)
    plan: list[tuple[str, tuple[Any, ...], timedelta | None, bool]] = [
        ("rp1", (back_pain(),), timedelta(minutes=30), False),
        ("rp2", (back_pain(),), timedelta(hours=2), False),
        ("rp3", (back_pain(),), timedelta(hours=10), True),
        ("rp4", (mscc(), back_pain()), timedelta(minutes=5), False),
        ("rp5", (rising_calcium(),), None, False),
    ]
    with transaction(session_factory(settings.resolved_database_url)) as session:
        for pid, findings, ack_after, dismiss in plan:
            patient = Patient(ids=Ids(pid))
            patient.evaluate(assess(*findings, patient=f"Patient/{pid}"), T0)
            episode = patient.open_episode
            assert episode is not None
            episode_store.save_state(
                session,
                episode_id=episode.id,
                patient_id=pid,
                status=episode.status,
                state=episode.to_json(),
            )
            for (rtype, rid), body in patient.store.resources.items():
                if rtype in ("Flag", "CommunicationRequest"):
                    clean = {k: v for k, v in body.items() if k != "meta"}
                    store.save(
                        session, resource_type=rtype, resource_id=rid, resource=clean, now=T0
                    )
            request = copy.deepcopy(patient.store.get(episode.communications[-1].reference))
            request.pop("meta")
            if ack_after is not None:
                at = T0 + ack_after
                done = (
                    dismissed(request, who="nurse", now=at, reason="duplicate")
                    if dismiss
                    else {**request, "status": "completed"}
                )
                assert done is not None
                store.save(
                    session,
                    resource_type="CommunicationRequest",
                    resource_id=request["id"],
                    resource=done,
                    if_match="1",
                    now=at,
                )
            else:
                escalation = {
                    **request,
                    "id": f"{pid}-escalation",
                    "identifier": [{"system": ESCALATION_IDENTIFIER_SYSTEM, "value": "x"}],
                    "priority": "urgent",
                    "basedOn": [{"reference": f"CommunicationRequest/{request['id']}"}],
                }
                store.save(
                    session,
                    resource_type="CommunicationRequest",
                    resource_id=escalation["id"],
                    resource=escalation,
                    now=T0 + timedelta(days=3),
                )
        for n in range(10):
            pid = f"rp{n + 1}"
            episode_store.ensure_lock_row(session, pid)
            lock = session.get(PatientLock, pid)
            assert lock is not None
            lock.evaluated_at = T0.replace(tzinfo=None)
        episode_store.ensure_lock_row(session, "never-evaluated")  # not counted


def test_the_report_matches_the_hand_worked_figures(
    client: TestClient, headers: dict[str, str], settings: Settings
) -> None:
    _seed(settings)
    r = client.get("/ops/report", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json() == EXPECTED


def test_the_report_needs_read_access_to_alerts(client: TestClient, settings: Settings) -> None:
    assert client.get("/ops/report").status_code == 401
    weak = mint(settings.signing_secret(), scope="system/Patient.read")
    r = client.get("/ops/report", headers={"Authorization": f"Bearer {weak}"})
    assert r.status_code == 403
    assert r.json()["resourceType"] == "OperationOutcome"


def test_the_cli_prints_the_same_figures(settings: Settings) -> None:
    _seed(settings)
    env = {
        "ALERTS_DATA_DIR": str(settings.data_dir),
        "ALERTS_JWT_SECRET": str(settings.jwt_secret),
        "PATH": "/usr/bin:/bin",
    }
    if settings.database_url:
        env["ALERTS_DATABASE_URL"] = settings.database_url
    run = subprocess.run(
        [sys.executable, "-m", "service.cli", "report"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == EXPECTED
    table = subprocess.run(
        [sys.executable, "-m", "service.cli", "report", "--format", "table"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert table.returncode == 0, table.stderr
    assert "alerts: 5 (5 open)" in table.stdout
    assert (
        "urgent         3             3               0    7200.0  36000.0            1"
        in table.stdout
    )


def test_an_empty_store_reports_zeros_without_dividing_by_zero() -> None:
    figures = build_report([], {}, [], 0)
    assert figures["alerts"]["total"] == 0
    assert figures["alerts_per_1000_patients_evaluated"] is None
    assert figures["time_to_acknowledge_seconds"]["stat"]["median"] is None
