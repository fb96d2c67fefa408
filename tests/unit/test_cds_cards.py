"""CDS Hooks cards built from open alerts (service/cds/cards.py): pure, no server."""

from __future__ import annotations

from typing import Any

import pytest

import contract as c
from service.cds import cards
from service.cds.cards import OpenAlert
from tests.api.cds_card_schema import Card, check_response

ROOT = "https://alerts.example.org"
FINDING_TEXT = "New back pain recorded on 2026-11-27: no back pain was recorded before it."


def _request(priority: str = "urgent", version: str = "1", rid: str = "cr-1") -> dict[str, Any]:
    return {
        "resourceType": "CommunicationRequest",
        "id": rid,
        "meta": {"versionId": version},
        "extension": [{"url": c.RULESET_VERSION_URL, "valueString": "bone-mets-v1.1"}],
        "status": "active",
        "priority": priority,
        "subject": {"reference": "Patient/p1"},
        "about": [{"reference": "Flag/f-1"}],
        "authoredOn": "2026-11-29T10:00:00Z",
        "reasonCode": [{"text": "New back pain"}],
        "reasonReference": [{"reference": "Condition/p1-bp", "display": "back pain"}],
    }


def _flag() -> dict[str, Any]:
    finding = {
        "coding": [{"system": "x", "code": "new-back-pain", "display": "New back pain"}],
        "text": FINDING_TEXT,
    }
    return {
        "resourceType": "Flag",
        "id": "f-1",
        "status": "active",
        "extension": [
            {"url": c.FINDING_EXTENSION_URL, "valueCodeableConcept": finding},
            {
                "url": c.RED_FLAG_EXTENSION_URL,
                "valueCodeableConcept": {"coding": [{"code": "w", "display": "Weight loss"}]},
            },
            {"url": c.FLAG_DETAIL_URL, "valueReference": {"reference": "Condition/p1-bp"}},
            {"url": c.FLAG_DETAIL_URL, "valueReference": {"reference": "Observation/ca-1"}},
        ],
    }


EVIDENCE: dict[str, dict[str, Any] | None] = {
    "Condition/p1-bp": {
        "resourceType": "Condition",
        "id": "p1-bp",
        "code": {"coding": [{"code": "161891005", "display": "Backache"}]},
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "onsetDateTime": "2026-11-27",
    },
    "Observation/ca-1": None,  # cited, but neither prefetched nor stored
}


@pytest.mark.parametrize(
    ("priority", "indicator"),
    [("stat", "critical"), ("asap", "critical"), ("urgent", "warning"), ("routine", "info")],
)
def test_indicator_follows_priority(priority: str, indicator: str) -> None:
    card = cards.card(OpenAlert(_request(priority), _flag(), EVIDENCE), service_root=ROOT)
    assert card["indicator"] == indicator
    Card.model_validate(card)


def test_card_content_fits_the_cds_hooks_schema_and_says_what_and_why() -> None:
    card = cards.card(OpenAlert(_request(), _flag(), EVIDENCE), service_root=ROOT)
    Card.model_validate(card)
    assert card["summary"] == "Urgent: possible bone metastasis: New back pain"
    assert "bone-mets-v1.1" in card["source"]["label"]
    assert card["source"]["topic"]["code"] == c.FLAG_CODE
    assert card["links"] == [
        {
            "label": "Open this alert on the oncology worklist",
            "url": f"{ROOT}/worklist#flag-f-1",
            "type": "absolute",
        }
    ]
    detail = card["detail"]
    assert "**New back pain**" in detail and "no back pain was recorded before it" in detail
    assert "Weight loss" in detail
    assert "Backache — active — 2026-11-27" in detail and "Condition/p1-bp" in detail
    assert "Observation/ca-1: not available" in detail
    assert "not a diagnosis" in detail
    codes = [(r["system"], r["code"]) for r in card["overrideReasons"]]
    system = f"{c.CODE_SYSTEM_BASE}/{c.DISMISS_REASON_CODE_SYSTEM_NAME}"
    assert codes == [(system, code) for code in c.DISMISS_REASONS]


def test_summary_never_exceeds_140_characters() -> None:
    flag = _flag()
    many = [
        {"url": c.FINDING_EXTENSION_URL, "valueCodeableConcept": {"text": f"finding {i} " * 5}}
        for i in range(10)
    ]
    flag["extension"] = many
    card = cards.card(OpenAlert(_request("stat"), flag, {}), service_root=ROOT)
    assert len(card["summary"]) <= 140 and card["summary"].endswith("…")
    Card.model_validate(card)


def test_uuid_is_stable_per_version_and_changes_with_it() -> None:
    one = cards.card_uuid(_request(version="1"))
    assert one == cards.card_uuid(_request(version="1"))
    assert one != cards.card_uuid(_request(version="2"))
    assert one != cards.card_uuid(_request(rid="cr-2"))


def test_a_request_without_flag_links_to_its_own_row_and_uses_its_reasons() -> None:
    card = cards.card(OpenAlert(_request(), None, {}), service_root=ROOT)
    assert card["links"][0]["url"] == f"{ROOT}/worklist#request-cr-1"
    assert "New back pain" in card["summary"]


def test_record_text_cannot_inject_markdown_links() -> None:
    evil = {
        "Condition/p1-bp": {
            "resourceType": "Condition",
            "id": "p1-bp",
            "code": {"text": "[click](https://evil.example)"},
        }
    }
    detail = cards.card(OpenAlert(_request(), _flag(), evil), service_root=ROOT)["detail"]
    assert "[click](" not in detail and "\\[click\\]\\(" in detail


def test_most_pressing_first_and_no_alert_no_card() -> None:
    alerts = [
        OpenAlert(_request("routine", rid="a"), None, {}),
        OpenAlert(_request("stat", rid="b"), None, {}),
    ]
    response = {"cards": cards.cards(alerts, service_root=ROOT)}
    check_response(response)
    assert [x["indicator"] for x in response["cards"]] == ["critical", "info"]
    assert cards.cards([], service_root=ROOT) == []
