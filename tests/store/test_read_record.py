"""The worker reads the `PatientRecord` the alert unit tests build by hand (issue 11, item 1).

`workers.evaluation.read_record` is the store side of `evaluate_record`: the open episode, its
stored Flag and requests, the consumed evidence and the episode's evidence as stored now, where
a deleted record is absent and a corrected one carries its new status. The withdrawal policy
(`retracted_evidence`) reads exactly that.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from service.config import Settings
from service.store.db import session_factory, transaction
from tests.builders import back_pain, breast_cancer, days_ago, patient
from tests.builders import transaction as bundle
from workers.alerts.withdrawal import retracted_evidence
from workers.evaluation import evaluate_patient, read_record


def _put(client: TestClient, headers: dict[str, str], *resources: dict[str, Any]) -> None:
    r = client.post("/fhir", json=bundle(*resources), headers=headers)
    assert r.status_code == 200, r.text


def test_the_worker_reads_withdrawn_and_deleted_evidence_as_the_policy_expects(
    settings: Settings, headers: dict[str, str]
) -> None:
    from workers.embedded import build_app

    factory = session_factory(settings.resolved_database_url)
    pain = back_pain("rr-bp", "rr", days_ago(2))
    other = back_pain("rr-bp2", "rr", days_ago(1))
    with TestClient(build_app(settings, start_relay=False)) as client:
        _put(client, headers, patient("rr"), breast_cancer("rr-bc", "rr", days_ago(900)), pain)
        _put(client, headers, other)
        assert evaluate_patient(factory, "rr", settings=settings).events == ("opened",)
        with transaction(factory) as session:
            record = read_record(session, "rr")
        assert record.episode is not None
        assert set(record.evidence) == {"Condition/rr-bp", "Condition/rr-bp2"}
        assert retracted_evidence(record.episode, record.evidence) == frozenset()
        assert {r["resourceType"] for r in record.alert_resources} == {
            "Flag",
            "CommunicationRequest",
        }

        refuted = back_pain("rr-bp", "rr", days_ago(2))
        refuted["verificationStatus"]["coding"][0]["code"] = "refuted"
        _put(client, headers, refuted)
        gone = client.delete("/fhir/Condition/rr-bp2", headers=headers)
        assert gone.status_code in (200, 204), gone.text
        with transaction(factory) as session:
            record = read_record(session, "rr")
        assert set(record.evidence) == {"Condition/rr-bp"}  # the deleted one is absent
        assert retracted_evidence(record.episode, record.evidence) == {
            "Condition/rr-bp",
            "Condition/rr-bp2",
        }
        outcome = evaluate_patient(factory, "rr", settings=settings)
        assert outcome.events[:2] == ("retracted", "closed")
