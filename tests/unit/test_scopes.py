"""SMART scopes (`service.auth.Principal`) directly: which interaction each scope allows. Pure;
the HTTP answers (403 OperationOutcomes, token checks) are in tests/api/security/."""

from __future__ import annotations

import pytest

from service.auth import Interaction, Principal
from service.errors import FHIRError

EVERY: tuple[Interaction, ...] = ("read", "search", "create", "update", "delete")


def _allowed(*scopes: str, resource_type: str = "Observation") -> set[str]:
    principal = Principal("t", frozenset(scopes))
    return {i for i in EVERY if principal.allows(resource_type, i)}


@pytest.mark.parametrize(
    ("scope", "allowed"),
    [
        ("system/*.*", set(EVERY)),
        ("system/Observation.*", set(EVERY)),
        ("system/Observation.read", {"read", "search"}),
        ("system/Observation.write", {"create", "update", "delete"}),
        ("system/Observation.rs", {"read", "search"}),
        ("system/Observation.cud", {"create", "update", "delete"}),
        ("system/Observation.cruds", set(EVERY)),
        ("system/*.r", {"read"}),
        ("user/Observation.read", {"read", "search"}),  # the worklist's session scopes
        ("system/Patient.*", set()),  # another type
        ("patient/Observation.read", set()),  # launch contexts are not served
        ("system/Observation.rx", set()),  # not v2 letters
        ("system/Observation", set()),
        ("Observation.read", set()),
        ("", set()),
    ],
)
def test_each_scope_allows_exactly_its_interactions(scope: str, allowed: set[str]) -> None:
    assert _allowed(scope) == allowed


def test_scopes_add_up() -> None:
    assert _allowed("system/Observation.r", "system/Observation.s", "system/Patient.d") == {
        "read",
        "search",
    }
    assert _allowed("system/Patient.d", resource_type="Patient") == {"delete"}


def test_require_refuses_with_a_403_naming_the_interaction() -> None:
    principal = Principal("t", frozenset({"system/Observation.read"}))
    principal.require("Observation", "search")
    with pytest.raises(FHIRError) as caught:
        principal.require("Observation", "create")
    assert caught.value.status == 403
    issue = caught.value.operation_outcome()["issue"][0]
    assert issue["code"] == "forbidden" and "create on Observation" in issue["diagnostics"]
