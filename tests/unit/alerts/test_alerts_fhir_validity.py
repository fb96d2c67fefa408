"""Every Flag and CommunicationRequest the scenarios write is valid FHIR R4.

Two independent checks: the offline R4 validator (official JSON schema plus FHIR.js value-set
checks, run with node) and the `fhir.resources` R4B models. The validator is not optional: a
missing node or validator fails the test rather than skipping it.
"""

from __future__ import annotations

from typing import Any

import pytest
from fhir.resources.R4B.communicationrequest import CommunicationRequest
from fhir.resources.R4B.flag import Flag

from tests.builders.findings import (
    CONFIG,
    Ids,
    assess,
    back_pain,
    high_spine,
    hypercalcemia,
    mscc,
    weight_loss,
)
from tests.builders.stories import (
    closed_with_an_open_request,
    every_kind_of_alert,
    lifecycle_walk,
    random_story,
)
from tests.conftest import R4Validator
from workers.alerts import AlertSettings, decide


def _all_written_resources() -> list[dict[str, Any]]:
    resources: list[dict[str, Any]] = []
    resources += lifecycle_walk()[0].store.versions
    resources += every_kind_of_alert().store.versions
    resources += closed_with_an_open_request().store.versions
    for seed in range(12):
        resources += random_story(seed).store.versions
    # The dry run's output: plan writes as they leave decide(), before any store touches them.
    dry = decide(
        assess(
            back_pain(), mscc(), hypercalcemia(grade=4), red_flags=[high_spine(), weight_loss()]
        ),
        None,
        [],
        now=back_pain().date,
        settings=AlertSettings(),
        config=CONFIG,
        retracted=frozenset(),
        new_id=Ids("dry"),
    )
    resources += [w.resource for w in dry.writes]
    return resources


@pytest.fixture(scope="module")
def written() -> list[dict[str, Any]]:
    resources = _all_written_resources()
    kinds = {r["resourceType"] for r in resources}
    assert kinds == {"Flag", "CommunicationRequest"}
    statuses = {(r["resourceType"], r["status"]) for r in resources}
    # The scenarios cover every status the service writes or meets.
    assert {
        ("Flag", "active"),
        ("Flag", "inactive"),
        ("Flag", "entered-in-error"),
        ("CommunicationRequest", "active"),
        ("CommunicationRequest", "revoked"),
        ("CommunicationRequest", "completed"),
    } <= statuses
    return resources


def test_every_written_resource_passes_the_r4_validator(
    written: list[dict[str, Any]], r4_validate: R4Validator
) -> None:
    assert r4_validate(written).passed == len(written)


def test_the_validator_does_reject_a_broken_alert(r4_validate: R4Validator) -> None:
    """Guards the check above: a bad status must be caught, or the validator is not working."""
    plan = decide(
        assess(back_pain()),
        None,
        [],
        now=back_pain().date,
        config=CONFIG,
        retracted=frozenset(),
        new_id=Ids(),
    )
    broken = [dict(plan.writes[1].resource, status="bogus")]
    result = r4_validate.run(broken)
    assert result.returncode == 1, result.stdout
    assert (result.passed, result.failed) == (0, 1)


def test_every_written_resource_parses_with_the_r4b_models(written: list[dict[str, Any]]) -> None:
    for resource in written:
        model = Flag if resource["resourceType"] == "Flag" else CommunicationRequest
        parsed = model.model_validate(resource)
        assert parsed.id == resource["id"]
