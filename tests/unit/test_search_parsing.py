"""`service.fhir.search.parse_search` directly (issue 11, item 8): query parameters become a
typed query, or a 400 naming the parameter. Pure: no database, no HTTP. The API tests
(tests/api/test_search.py, tests/api/security/test_search_input.py) check the same rules end to
end; these pin the parser's own decisions one by one."""

from __future__ import annotations

from datetime import datetime

import pytest

from service.errors import FHIRError
from service.fhir.search import (
    SearchLimits,
    StringValue,
    TokenValue,
    parse_search,
)


def _refused(resource_type: str, items: list[tuple[str, str]], **kw: object) -> FHIRError:
    with pytest.raises(FHIRError) as caught:
        parse_search(resource_type, items, **kw)  # type: ignore[arg-type]
    assert caught.value.status == 400
    return caught.value


def _issue(err: FHIRError) -> dict[str, object]:
    issues = err.operation_outcome()["issue"]
    assert len(issues) >= 1
    return issues[0]


def test_no_parameters_is_the_default_page() -> None:
    q = parse_search("Observation", [], default_count=20)
    assert (q.resource_type, q.criteria, q.count, q.offset, q.total) == (
        "Observation",
        (),
        20,
        0,
        True,
    )
    assert q.summary == "false" and q.elements is None and q.echo == ()


def test_commas_are_ored_alternatives_and_an_escaped_comma_is_literal() -> None:
    q = parse_search("Observation", [("code", r"http://loinc.org|17861-6,a\,b,system|")])
    (criterion,) = q.criteria
    assert criterion.param.name == "code"
    assert criterion.tokens == (
        TokenValue("http://loinc.org", "17861-6"),
        TokenValue(None, "a,b"),
        TokenValue("system", None),
    )


def test_repeated_parameters_are_anded() -> None:
    q = parse_search("Observation", [("status", "final"), ("status", "amended")])
    assert [c.tokens for c in q.criteria] == [
        (TokenValue(None, "final"),),
        (TokenValue(None, "amended"),),
    ]


def test_references_keep_the_id_and_only_patients_are_accepted() -> None:
    q = parse_search("Observation", [("patient", "Patient/p1,p2"), ("subject", "p3")])
    assert [c.ids for c in q.criteria] == [("p1", "p2"), ("p3",)]
    err = _refused("Observation", [("subject", "Group/g1")])
    assert "only accepts Patient references" in str(_issue(err)["diagnostics"])


def test_dates_take_the_supported_prefixes_as_ranges() -> None:
    q = parse_search("Observation", [("date", "ge2026-01-01"), ("date", "lt2026-02")])
    first, second = (c.dates[0] for c in q.criteria)
    # Ranges in naive UTC, the store's clock: a day is its whole day, a month its whole month.
    assert (first.prefix, first.start) == ("ge", datetime(2026, 1, 1))
    assert first.end == datetime(2026, 1, 1, 23, 59, 59, 999999)
    assert (second.prefix, second.start) == ("lt", datetime(2026, 2, 1))
    assert second.end == datetime(2026, 2, 28, 23, 59, 59, 999999)
    (plain,) = parse_search("Observation", [("date", "2026-03-04")]).criteria
    assert plain.dates[0].prefix == "eq"


@pytest.mark.parametrize(
    ("value", "words"),
    [("ne2026-01-01", "prefix 'ne' is not supported"), ("yesterday", "not a FHIR date")],
)
def test_bad_dates_are_refused_naming_the_parameter(value: str, words: str) -> None:
    issue = _issue(_refused("Observation", [("date", value)]))
    assert words in str(issue["diagnostics"])
    assert issue["expression"] == ["date"]


def test_string_modifiers_choose_the_match() -> None:
    q = parse_search(
        "Patient", [("name", "  ÉVA "), ("family:contains", "smi"), ("given:exact", "Ann")]
    )
    assert [c.strings for c in q.criteria] == [
        (StringValue("eva", "starts"),),
        (StringValue("smi", "contains"),),
        (StringValue("Ann", "exact"),),
    ]
    _refused("Patient", [("name", "   ")])
    _refused("Observation", [("code:exact", "x")])  # modifiers belong to string parameters


def test_an_empty_value_adds_no_criterion_but_is_echoed() -> None:
    q = parse_search("Observation", [("code", "")])
    assert q.criteria == () and q.echo == (("code", ""),)


def test_unknown_parameters_are_each_refused_never_ignored() -> None:
    err = _refused("Observation", [("colour", "red"), ("code", "x"), ("size", "9")])
    issues = err.operation_outcome()["issue"]
    assert [i["expression"] for i in issues] == [["colour"], ["size"]]
    assert all(i["code"] == "not-supported" for i in issues)


@pytest.mark.parametrize(
    ("value", "count"), [("0", 0), ("10", 10), ("5000", 1000), ("9" * 40, 1000)]
)
def test_count_is_lowered_to_the_maximum(value: str, count: int) -> None:
    assert parse_search("Flag", [("_count", value)], max_count=1000).count == count


@pytest.mark.parametrize("value", ["-1", " 1", "+1", "1_0", "١", "ten"])
def test_count_must_be_plain_digits(value: str) -> None:
    _refused("Flag", [("_count", value)])


def test_offset_is_capped_by_the_limits() -> None:
    limits = SearchLimits(max_offset=100)
    assert parse_search("Flag", [("_offset", "100")], limits=limits).offset == 100
    err = _refused("Flag", [("_offset", "101")], limits=limits)
    assert "at most 100" in str(_issue(err)["diagnostics"])


def test_count_and_offset_are_not_echoed_for_paging_links() -> None:
    items = [("status", "active"), ("_count", "5"), ("_offset", "10"), ("_sort", "-date")]
    q = parse_search("Flag", items)
    assert q.echo == (("status", "active"), ("_sort", "-date"))


def test_sort_keys_and_their_limits() -> None:
    q = parse_search("Observation", [("_sort", "-date,_lastUpdated")])
    assert [(k.param.name, k.descending) for k in q.sort] == [
        ("date", True),
        ("_lastUpdated", False),
    ]
    _refused("Observation", [("_sort", "code")])  # a token is not sortable
    _refused("Observation", [("_sort", "date,date,date,date")])


def test_summary_total_and_elements() -> None:
    assert parse_search("Flag", [("_summary", "count")]).summary_count
    assert parse_search("Flag", [("_total", "none")]).total is False
    q = parse_search("Flag", [("_elements", "status, code"), ("_elements", "subject")])
    assert q.elements == ("status", "code", "subject")
    _refused("Flag", [("_summary", "maybe")])
    _refused("Flag", [("_total", "some")])
    _refused("Flag", [("_elements", "a.b")])
    _refused("Flag", [("_elements", "status"), ("_summary", "true")])
    _refused("Flag", [("_count:exact", "3")])  # control parameters take no modifier


def test_includes_and_revincludes_must_be_declared() -> None:
    q = parse_search(
        "Patient", [("_revinclude", "Flag:subject"), ("_revinclude", "Condition:patient:Patient")]
    )
    assert [(r.include.source, r.target) for r in q.revincludes] == [
        ("Flag", None),
        ("Condition", "Patient"),
    ]
    (inc,) = parse_search("Flag", [("_include", "Flag:subject")]).includes
    assert inc.target_types() == ("Patient",)
    assert "supported: Flag:patient, Flag:subject" in str(
        _issue(_refused("Flag", [("_include", "Flag:author")]))["diagnostics"]
    )
    _refused("Flag", [("_include", "Flag")])


def test_costly_searches_are_refused_as_too_costly() -> None:
    limits = SearchLimits(max_params=3, max_values=2, max_total_values=3, max_value_length=10)
    cases = [
        [("status", "a")] * 4,
        [("status", "a,b,c")],
        [("status", "a,b"), ("code", "c,d")],
        [("code", "x" * 11)],
    ]
    for items in cases:
        assert _issue(_refused("Flag", items, limits=limits))["code"] == "too-costly", items


def test_a_nul_character_is_refused() -> None:
    _refused("Patient", [("name", "a\x00b")])
    _refused("Patient", [("na\x00me", "a")])
