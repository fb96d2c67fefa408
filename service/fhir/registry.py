"""The resource types this server serves and the search parameters each one declares.

Routes, the search parser and the CapabilityStatement all read this one table, so what the
server says it supports is exactly what it does (a parameter missing here is refused with 400,
never silently ignored: an ignored filter on clinical data returns the wrong patients).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ParamKind = Literal["reference", "token", "token-column", "date", "last-updated", "id", "string"]


@dataclass(frozen=True, slots=True)
class SearchParam:
    name: str
    kind: ParamKind
    documentation: str
    fhir_type: str  # CapabilityStatement searchParam.type


_ID = SearchParam("_id", "id", "Logical id", "token")
_LAST = SearchParam("_lastUpdated", "last-updated", "When the resource version was stored", "date")
_PATIENT = SearchParam("patient", "reference", "The patient (Patient/id or id)", "reference")
_SUBJECT = SearchParam("subject", "reference", "The subject, when it is a Patient", "reference")
_IDENT = SearchParam("identifier", "token", "Business identifier (system|value)", "token")
_CODE = SearchParam("code", "token", "Code (system|code, code, or system|)", "token")
_CATEGORY = SearchParam("category", "token", "Category (system|code)", "token")
_STRING_DOC = " (case- and accent-insensitive starts-with; :exact, :contains)"


def _status(doc: str) -> SearchParam:
    return SearchParam("status", "token-column", doc, "token")


def _date(doc: str) -> SearchParam:
    return SearchParam("date", "date", doc, "date")


SEARCH_PARAMS: dict[str, tuple[SearchParam, ...]] = {
    "Patient": (
        _ID,
        _LAST,
        _IDENT,
        SearchParam("name", "string", "Any part of HumanName" + _STRING_DOC, "string"),
        SearchParam("family", "string", "HumanName.family" + _STRING_DOC, "string"),
        SearchParam("given", "string", "HumanName.given" + _STRING_DOC, "string"),
        SearchParam("birthdate", "date", "Patient.birthDate (prefixes eq, gt, ge, lt, le)", "date"),
        SearchParam("gender", "token", "Patient.gender (administrative-gender)", "token"),
    ),
    "Observation": (
        _ID,
        _LAST,
        _PATIENT,
        _SUBJECT,
        _IDENT,
        _CODE,
        _CATEGORY,
        _status("Observation.status"),
        _date("effective[x], else issued"),
    ),
    "Condition": (
        _ID,
        _LAST,
        _PATIENT,
        _SUBJECT,
        _IDENT,
        _CODE,
        _CATEGORY,
        SearchParam("clinical-status", "token", "Condition.clinicalStatus", "token"),
        SearchParam("verification-status", "token", "Condition.verificationStatus", "token"),
        _date("onset[x], else recordedDate"),
    ),
    "Flag": (
        _ID,
        _LAST,
        _PATIENT,
        _SUBJECT,
        _IDENT,
        _CODE,
        _CATEGORY,
        _status("Flag.status"),
        _date("Flag.period"),
    ),
    "CommunicationRequest": (
        _ID,
        _LAST,
        _PATIENT,
        _SUBJECT,
        _IDENT,
        _CATEGORY,
        _status("CommunicationRequest.status"),
        SearchParam("priority", "token", "CommunicationRequest.priority", "token"),
        _date("CommunicationRequest.authoredOn"),
    ),
    # Routing (issue 13): an EHR posts the oncology team, whose Practitioner/PractitionerRole
    # members receive escalations (workers/routing.py). Stored as sent; no patient.
    "CareTeam": (_ID, _LAST, _IDENT, _CATEGORY, _status("CareTeam.status")),
    # Who did what to an alert (issue 13, service/audit.py): written by the server only.
    "AuditEvent": (
        _ID,
        _LAST,
        _PATIENT,
        SearchParam(
            "entity",
            "token",
            "The alert acted on: Type/id (any version) or Type/id/_history/n",
            "reference",
        ),
        SearchParam("agent", "token", "Who acted: user name or client id", "token"),
        SearchParam("action", "token", "Alert action (acknowledge, snooze, ...)", "token"),
        _date("AuditEvent.recorded"),
    ),
}

# Types clients may read and search but never write: the server's own records.
READ_ONLY_TYPES = frozenset({"AuditEvent"})

# Result-control parameters every search accepts.
CONTROL_PARAMS = frozenset(
    {
        "_count",
        "_offset",
        "_total",
        "_totalMethod",
        "_summary",
        "_format",
        "_pretty",
        "_sort",
        "_include",
        "_revinclude",
        "_elements",
    }
)

# Parameters `_sort` accepts, by kind: dates sort on the indexed range, ids on the id.
SORTABLE_KINDS = frozenset({"date", "last-updated", "id"})


@dataclass(frozen=True, slots=True)
class Include:
    """`_include=<source>:<name>` follows the references at `paths` of each matched resource;
    as `_revinclude` (only where `indexed`: the store keeps the patient reference in a column)
    it finds the `source` resources whose reference points at a matched resource."""

    source: str
    name: str
    paths: tuple[str, ...]
    targets: tuple[str, ...]
    indexed: bool  # the reference is the store's patient_id column (revinclude possible)

    @property
    def code(self) -> str:
        return f"{self.source}:{self.name}"


def _patient_ref(source: str, name: str, path: str) -> Include:
    return Include(source, name, (path,), ("Patient",), indexed=True)


INCLUDES: tuple[Include, ...] = (
    _patient_ref("Observation", "patient", "subject"),
    _patient_ref("Observation", "subject", "subject"),
    _patient_ref("Condition", "patient", "subject"),
    _patient_ref("Condition", "subject", "subject"),
    _patient_ref("Flag", "patient", "subject"),
    _patient_ref("Flag", "subject", "subject"),
    _patient_ref("CommunicationRequest", "patient", "subject"),
    _patient_ref("CommunicationRequest", "subject", "subject"),
    # The alert a request is about (Flag), or whatever else it references in `about`.
    Include(
        "CommunicationRequest",
        "about",
        ("about",),
        ("Flag", "Observation", "Condition", "CommunicationRequest", "Patient"),
        indexed=False,
    ),
)


def includes_from(resource_type: str) -> dict[str, Include]:
    """`_include` names a search on `resource_type` accepts, by "Source:name"."""
    return {i.code: i for i in INCLUDES if i.source == resource_type}


def revincludes_into(resource_type: str) -> dict[str, Include]:
    """`_revinclude` names a search on `resource_type` accepts (references pointing at it)."""
    return {
        i.code: i
        for i in INCLUDES
        if i.indexed and resource_type in i.targets and i.source in SEARCH_PARAMS
    }


SERVED_TYPES: tuple[str, ...] = tuple(SEARCH_PARAMS)

# Resource types this service reads when it evaluates a patient.
EVALUATED_TYPES = frozenset({"Observation", "Condition"})


def register(resource_type: str, params: tuple[SearchParam, ...]) -> None:
    """Lets a later module (e.g. Subscription management) serve one more type."""
    SEARCH_PARAMS[resource_type] = params
    global SERVED_TYPES
    SERVED_TYPES = tuple(SEARCH_PARAMS)


def params_for(resource_type: str) -> dict[str, SearchParam]:
    return {p.name: p for p in SEARCH_PARAMS[resource_type]}


def is_served(resource_type: str) -> bool:
    return resource_type in SEARCH_PARAMS
