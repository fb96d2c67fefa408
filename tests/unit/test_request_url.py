"""`Bundle.entry.request.url` parsing: every accepted shape, and every refused one (a url
that parses loosely loses served data as "Not stored")."""

from __future__ import annotations

import pytest

from service.fhir.request_url import (
    RequestTarget,
    RequestUrlError,
    conditional_criteria,
    conditional_reference,
    parse_request_url,
)

BASE = "http://testserver:8000/fhir"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("Observation", RequestTarget("Observation", "type")),
        ("/Observation", RequestTarget("Observation", "type")),
        ("Observation/o-1.2", RequestTarget("Observation", "instance", "o-1.2")),
        ("Observation/o1/_history/3", RequestTarget("Observation", "version", "o1", "3")),
        ("Patient?identifier=s|v", RequestTarget("Patient", "search", query="identifier=s|v")),
        ("Claim", RequestTarget("Claim", "type")),
        (f"{BASE}/Observation", RequestTarget("Observation", "type")),
        (
            "HTTP://TestServer:8000/fhir/Observation/x",
            RequestTarget("Observation", "instance", "x"),
        ),
        (
            f"{BASE}/Patient?identifier=s|v",
            RequestTarget("Patient", "search", query="identifier=s|v"),
        ),
    ],
)
def test_accepted_urls(url: str, expected: RequestTarget) -> None:
    assert parse_request_url(url, BASE) == expected


@pytest.mark.parametrize(
    "url",
    [
        "",
        "observation",
        "OBSERVATION",
        "Observation ",
        " Observation",
        "Obser vation",
        "Observation\t",
        "123",
        "../Observation",
        "Observation/..",
        "Observation/../Patient",
        "Observation/%2e%2e",
        "Observation\\x",
        "Observations",
        "Observation?",
        "Observation/x?y=1",
        "Observation/x/_history",
        "Observation/x/y",
        "Observation/_search",
        "Observation#frag",
        "http://testserver:8000/fhir",
        "http://testserver/fhir/Observation",
        "https://testserver:8000/fhir/Observation",
        "http://elsewhere:8000/fhir/Observation",
        "http://testserver:8000/fhirx/Observation",
        "http://user:pw@testserver:8000/fhir/Observation",
        "urn:uuid:0b6c2f52-9a50-4a39-8f39-7d1c3f0e0001",
    ],
)
def test_refused_urls(url: str) -> None:
    with pytest.raises(RequestUrlError):
        parse_request_url(url, BASE)


def test_absolute_urls_need_a_base() -> None:
    with pytest.raises(RequestUrlError):
        parse_request_url(f"{BASE}/Observation", None)


def test_conditional_references() -> None:
    assert conditional_reference("Patient?identifier=s|v") == RequestTarget(
        "Patient", "search", query="identifier=s|v"
    )
    for ordinary in ("Patient/1", "urn:uuid:1", "#c1", "http://x/fhir/Patient?x=1"):
        assert conditional_reference(ordinary) is None
    for broken in ("Patient?", "patient?identifier=x", "Patient? identifier=x"):
        with pytest.raises(RequestUrlError):
            conditional_reference(broken)


def test_conditional_criteria() -> None:
    for text in ("identifier=s|v", "?identifier=s|v", "Patient?identifier=s|v"):
        assert conditional_criteria("Patient", text) == "identifier=s|v"
    for bad in ("", "?", "Observation?identifier=s|v", "identifier=s v", None):
        with pytest.raises(RequestUrlError):
            conditional_criteria("Patient", bad)
