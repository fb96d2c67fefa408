"""`Bundle.entry.request.url` and conditional reference strings, parsed strictly.

A lenient parser here loses clinical data: a served Observation sent as
`http://host/fhir/Observation`, `observation` or `"Observation "` used to look like an
unserved type and was dropped with `200 OK "Not stored"`. So a url is either one of the shapes
FHIR defines, relative to this server's base (an absolute url must start with that base), or a
400. Only a well-formed url naming a real R4 type this service does not serve is "unserved".

Pure: no I/O; the caller passes the base of the request being processed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

from service.fhir.registry import SEARCH_PARAMS
from service.fhir.validate import known_resource_type

Shape = Literal["type", "search", "instance", "version"]

_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
_WORD = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_ABSOLUTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class RequestUrlError(ValueError):
    """Why a url is refused (names the shape, never patient values)."""


@dataclass(frozen=True, slots=True)
class RequestTarget:
    """`Type`, `Type?query`, `Type/id` or `Type/id/_history/vid`, relative to the base."""

    resource_type: str
    shape: Shape
    resource_id: str | None = None
    version_id: str | None = None
    query: str = ""

    @property
    def served(self) -> bool:
        return self.resource_type in SEARCH_PARAMS

    @property
    def reference(self) -> str:
        return f"{self.resource_type}/{self.resource_id}"


def _origin(url: str) -> tuple[str, str, int | None, str]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        raise RequestUrlError("the absolute url has an invalid port") from None
    return (
        scheme,
        (parts.hostname or "").lower(),
        port or _DEFAULT_PORTS.get(scheme),
        parts.path.rstrip("/"),
    )


def relative_to_base(url: str, base: str | None) -> str:
    """The part of an absolute `url` after this server's FHIR base, or RequestUrlError."""
    if base is None:
        raise RequestUrlError("absolute urls are not accepted here; use Type, Type/id or Type?…")
    want = _origin(base)
    split = urlsplit(url)
    if split.fragment or split.username or split.password:
        raise RequestUrlError("the absolute url carries a fragment or credentials")
    scheme, host, port, path = _origin(url)
    if (scheme, host, port) != want[:3] or not (path + "/").startswith(want[3] + "/"):
        raise RequestUrlError("the absolute url is not on this server's FHIR base")
    rest = split.path[len(want[3]) :].lstrip("/") if want[3] else split.path.lstrip("/")
    if not rest:
        raise RequestUrlError("the absolute url names no resource type")
    return rest + (f"?{split.query}" if split.query else "")


def _check_type(rtype: str) -> None:
    if not _TYPE.match(rtype) or not known_resource_type(rtype):
        served = {t.lower(): t for t in SEARCH_PARAMS}
        if rtype.lower() in served:
            raise RequestUrlError(
                f"resource types are case-sensitive: write '{served[rtype.lower()]}'"
            )
        raise RequestUrlError("the url does not start with a FHIR R4 resource type")


def _check_id(value: str, what: str) -> None:
    if value in (".", "..") or not _ID.match(value):
        raise RequestUrlError(f"the {what} in the url is not a valid FHIR id")


def parse_request_url(url: object, base: str | None = None) -> RequestTarget:
    """Parse a request url strictly; `base` (this server's `…/fhir`) admits absolute urls."""
    if not isinstance(url, str) or not url:
        raise RequestUrlError("request.url must be a non-empty string")
    if any(c.isspace() for c in url) or "\\" in url:
        raise RequestUrlError("request.url may not contain whitespace or backslashes")
    if _ABSOLUTE.match(url):
        url = relative_to_base(url, base)
    path, sep, query = url.partition("?")
    if path.startswith("/"):
        path = path[1:]
    if "#" in url:
        raise RequestUrlError("request.url may not carry a fragment")
    segments = path.split("/")
    rtype = segments[0]
    _check_type(rtype)
    if sep:
        if len(segments) != 1 or not query:
            raise RequestUrlError("a search url is Type?name=value, with criteria")
        try:
            parse_qsl(query, keep_blank_values=True, strict_parsing=True)
        except ValueError:
            raise RequestUrlError("the query of the url is not a valid query string") from None
        return RequestTarget(rtype, "search", query=query)
    if len(segments) == 1:
        return RequestTarget(rtype, "type")
    _check_id(segments[1], "id")
    if len(segments) == 2:
        return RequestTarget(rtype, "instance", segments[1])
    if len(segments) == 4 and segments[2] == "_history":
        _check_id(segments[3], "version")
        return RequestTarget(rtype, "version", segments[1], segments[3])
    raise RequestUrlError("the url is not Type, Type?criteria, Type/id or Type/id/_history/vid")


def conditional_reference(reference: str) -> RequestTarget | None:
    """`Patient?identifier=sys|val` inside a resource (FHIR "conditional reference"), else None.

    Only the `Type?query` shape counts; anything else (`Patient/1`, `urn:uuid:…`, absolute
    urls, `#contained`) is an ordinary reference and is left alone. RequestUrlError when it
    has that shape but is not a valid search (unknown type, empty criteria).
    """
    head, sep, _query = reference.partition("?")
    if not sep or not _WORD.match(head):
        return None
    return parse_request_url(reference)  # a malformed one is an error, never stored as is


def conditional_criteria(resource_type: str, text: object) -> str:
    """If-None-Exist / `ifNoneExist` criteria, as `identifier=…`, `?identifier=…` or
    `Type?identifier=…` (the type must be the one being created); the query part is returned."""
    if not isinstance(text, str):
        raise RequestUrlError("ifNoneExist must be a query string")
    head, sep, query = text.partition("?")
    if sep and head and head != resource_type:
        raise RequestUrlError("the criteria name another resource type")
    criteria = query if sep else text
    if not criteria or any(c.isspace() for c in criteria):
        raise RequestUrlError("the criteria must be a non-empty query string without whitespace")
    try:
        parse_qsl(criteria, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise RequestUrlError("the criteria are not a valid query string") from None
    return criteria
