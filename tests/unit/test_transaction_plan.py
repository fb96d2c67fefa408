"""The transaction planner (`service.transaction_plan.plan_bundle`) directly: what each entry
will do, decided before anything is written. Pure: stored data is an in-memory resolver here,
as the store is in a transaction (tests/store/test_bundles.py) and nothing in the dry run."""

from __future__ import annotations

from typing import Any

import pytest

from service.errors import FHIRError
from service.transaction_plan import NoStore, Plan, plan_bundle
from tests.builders import calcium, entry, lab, patient, without_id

URN_P = "urn:uuid:0b6c2f52-9a50-4a39-8f39-7d1c3f0e0001"


class Stored:
    """The resolver over a dict of criteria → ids, recording what it was asked."""

    def __init__(self, matches: dict[str, list[str]] | None = None) -> None:
        self.matches = matches or {}
        self.asked: list[tuple[str, str, str]] = []

    def _find(self, kind: str, resource_type: str, criteria: str) -> list[str]:
        self.asked.append((kind, resource_type, criteria))
        return self.matches.get(f"{resource_type}?{criteria}", [])

    def create_match(self, resource_type: str, criteria: str) -> str | None:
        found = self._find("create", resource_type, criteria)
        return found[0] if found else None

    def update_target(self, resource_type: str, criteria: str, body_id: str | None) -> str | None:
        found = self._find("update", resource_type, criteria)
        return found[0] if found else None

    def delete_target(self, resource_type: str, criteria: str) -> str | None:
        found = self._find("delete", resource_type, criteria)
        return found[0] if found else None

    def reference_matches(self, resource_type: str, criteria: str) -> list[str]:
        return self._find("reference", resource_type, criteria)


def _bundle(*entries: Any) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


def _obs(pid_ref: str) -> dict[str, Any]:
    return {**without_id(calcium("x", "x")), "subject": {"reference": pid_ref}}


def _plan(*entries: Any, resolver: Any = None, atomic: bool = True) -> Plan:
    return plan_bundle(_bundle(*entries), resolver or NoStore(), base=None, atomic=atomic)


def _refusal(*entries: Any, resolver: Any = None) -> dict[str, Any]:
    with pytest.raises(FHIRError) as caught:
        _plan(*entries, resolver=resolver)
    return caught.value.operation_outcome()["issue"][0]


def test_entries_run_deletes_then_creates_then_updates_then_reads() -> None:
    plan = _plan(
        entry("GET", "Patient/r"),
        entry("PUT", "Patient/u", patient("u")),
        entry("POST", "Patient", without_id(patient("c"))),
        entry("DELETE", "Patient/d"),
    )
    assert [(e.method, e.action) for e in plan.ordered] == [
        ("DELETE", "delete"),
        ("POST", "create"),
        ("PUT", "update"),
        ("GET", "read"),
    ]


def test_urn_references_become_the_ids_the_plan_assigns() -> None:
    plan = _plan(
        entry("POST", "Observation", _obs(URN_P)),
        entry("POST", "Patient", without_id(patient("x")), full_url=URN_P),
    )
    obs, pat = plan.entries
    assert pat.resource_id and pat.resource is not None and pat.resource["id"] == pat.resource_id
    assert obs.resource is not None
    assert obs.resource["subject"] == {"reference": f"Patient/{pat.resource_id}"}
    assert plan.mapping == {URN_P: f"Patient/{pat.resource_id}"}


def test_an_unresolved_urn_is_refused_at_its_path() -> None:
    issue = _refusal(entry("POST", "Observation", _obs(URN_P)))
    assert issue["expression"] == [
        "Bundle.entry[0]",
        "Bundle.entry[0].resource",
        "Observation.subject.reference",
    ]


def test_conditional_references_resolve_against_the_store_and_the_bundle() -> None:
    stored = Stored({"Patient?identifier=urn:test:mrn|s1": ["s1"]})
    plan = _plan(
        entry("POST", "Observation", _obs("Patient?identifier=urn:test:mrn|s1")),
        entry("POST", "Observation", _obs("Patient?identifier=urn:test:mrn|new")),
        entry("PUT", "Patient/new", patient("new")),
        resolver=stored,
    )
    first, second, _ = plan.entries
    assert first.resource is not None and second.resource is not None
    assert first.resource["subject"] == {"reference": "Patient/s1"}
    assert second.resource["subject"] == {"reference": "Patient/new"}  # this Bundle's own
    ambiguous = Stored({"Patient?gender=female": ["a", "b"]})
    several = _refusal(
        entry("POST", "Observation", _obs("Patient?gender=female")), resolver=ambiguous
    )
    assert several["code"] == "multiple-matches"
    none = _refusal(entry("POST", "Observation", _obs("Patient?identifier=urn:test:mrn|z")))
    assert "matches no resource" in none["diagnostics"]


def test_conditional_writes_ask_the_resolver() -> None:
    stored = Stored(
        {
            "Patient?identifier=urn:test:mrn|m": ["m"],
            "Patient?identifier=urn:test:mrn|u": ["u"],
        }
    )
    plan = _plan(
        entry("POST", "Patient", without_id(patient("x")), ifNoneExist="identifier=urn:test:mrn|m"),
        entry("PUT", "Patient?identifier=urn:test:mrn|u", without_id(patient("y"))),
        entry("DELETE", "Patient?identifier=urn:test:mrn|gone"),
        resolver=stored,
    )
    matched, updated, deleted = plan.entries
    assert (matched.action, matched.resource_id) == ("match", "m")
    assert (updated.action, updated.resource_id) == ("update", "u")
    assert updated.resource is not None and updated.resource["id"] == "u"
    assert (deleted.action, deleted.resource_id) == ("noop", None)
    assert [kind for kind, _, _ in stored.asked] == ["delete", "create", "update"]


def test_a_transaction_may_write_each_resource_once() -> None:
    issue = _refusal(
        entry("PUT", "Patient/p", patient("p")),
        entry("DELETE", "Patient/p"),
    )
    assert "same resource as Bundle.entry[0]" in issue["diagnostics"]
    twice = _refusal(
        entry("POST", "Patient", without_id(patient("a")), ifNoneExist="identifier=urn:test:mrn|a"),
        entry("POST", "Patient", without_id(patient("a")), ifNoneExist="identifier=urn:test:mrn|a"),
    )
    assert "same resource" in twice["diagnostics"]
    repeated = _refusal(
        entry("POST", "Patient", without_id(patient("a")), full_url=URN_P),
        entry("POST", "Patient", without_id(patient("b")), full_url=URN_P),
    )
    assert repeated["expression"][-1] == "Bundle.entry[1].fullUrl"


def test_a_batch_keeps_each_entrys_problem_to_itself() -> None:
    plan = _plan(
        entry("PUT", "Patient/ok", patient("ok")),
        entry("PUT", "Patient/bad", patient("other")),  # body id differs from the url
        entry("POST", "Observation", _obs("Patient/ok")),
        {"request": {"method": "FETCH", "url": "Patient"}},
        atomic=False,
    )
    errors = [e.error.status if e.error else None for e in plan.entries]
    assert errors == [None, 400, None, 400]
    assert [e.writes for e in plan.entries] == [True, False, True, False]


def test_a_reference_to_a_failed_batch_entry_fails_only_itsentry() -> None:
    """The entry is well formed but its resolution fails (a conditional update matching
    several): what refers to it by fullUrl fails too, and nothing else does."""

    class Several(Stored):
        def update_target(self, resource_type: str, criteria: str, body_id: str | None) -> None:
            raise FHIRError.of(412, "multiple-matches", "several")

    plan = _plan(
        entry("PUT", "Patient?gender=female", without_id(patient("x")), full_url=URN_P),
        entry("POST", "Observation", _obs(URN_P)),
        entry("POST", "Observation", _obs("Patient/elsewhere")),
        resolver=Several(),
        atomic=False,
    )
    failed, dependent, fine = plan.entries
    assert failed.error is not None and failed.error.status == 412
    assert dependent.error is not None and fine.error is None
    diagnostics = dependent.error.operation_outcome()["issue"][0]["diagnostics"]
    assert "names an entry of this batch that failed" in diagnostics
    assert plan.mapping == {URN_P: ""}


def test_unserved_types_are_skipped_but_still_get_an_id_for_references() -> None:
    claim = {"resourceType": "Claim", "patient": {"reference": URN_P}}
    plan = _plan(
        entry("POST", "Claim", claim),
        entry("POST", "Patient", without_id(patient("x")), full_url=URN_P),
    )
    skipped, pat = plan.entries
    assert skipped.action == "skip" and skipped.resource_id and not skipped.writes
    assert skipped.resource is not None
    assert skipped.resource["patient"] == {"reference": f"Patient/{pat.resource_id}"}


@pytest.mark.parametrize(
    ("entry", "code"),
    [
        (entry("PATCH", "Patient/p", {"op": "x"}), "not-supported"),
        (entry("POST", "Patient/p", patient("p")), "not-supported"),
        (entry("PUT", "Patient", patient("p")), "invalid"),
        (entry("PUT", "Patient/p"), "invalid"),
        (entry("PUT", "Patient/p", lab("p", "p", "1", 1, "1", "2026-01-01")), "invalid"),
        (entry("GET", "Patient/p", ifNoneExist="a=b"), None),
        (entry("PUT", "Patient/p", patient("p"), ifNoneExist="a=b"), "invalid"),
        ({"request": {"url": "Patient"}}, "invalid"),
        ("not an object", "invalid"),
    ],
)
def test_entry_shapes_that_are_refused(entry: Any, code: str | None) -> None:
    if code is None:  # a read ignores ifNoneExist
        assert _plan(entry).entries[0].action == "read"
        return
    issue = _refusal(entry)
    assert issue["code"] == code and issue["expression"][0] == "Bundle.entry[0]"
