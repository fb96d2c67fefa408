"""Record statuses, read one way for eligibility (§1), what counts (§2) and retraction (§6).

clinical-rules.md §8: Condition.verificationStatus has a required binding, so a coding whose
code is `refuted` or `entered-in-error` means that whether or not it names its `system` (many
feeds omit it; HL7's is the only one the binding allows). Reading the status in two places
with two rules is how a refuted Condition once kept a patient eligible while retraction had
already dropped it; both now call these functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

VER_STATUS_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
VER_STATUS_EXCLUDED = frozenset({"refuted", "entered-in-error"})
"""verificationStatus codes after which a Condition no longer counts."""

OBSERVATION_COUNTS = frozenset({"final", "amended", "corrected", "preliminary"})
"""Observation.status codes whose results the rules use."""

OBSERVATION_WITHDRAWN = frozenset({"entered-in-error", "cancelled"})
"""Observation.status codes that retract evidence already alerted on (`registered` never
backed an alert, so it cannot retract one)."""


def verification_excluded(concept: Any) -> bool:
    """True when a verificationStatus CodeableConcept says refuted or entered-in-error: a
    coding with that code and either no `system` or HL7's. A coding that names another system
    is that system's code, not a status (a local "refuted" may mean anything). Malformed JSON is
    not a status: False."""
    if not isinstance(concept, Mapping):
        return False
    codings = concept.get("coding")
    if not isinstance(codings, list):
        return False
    for coding in codings:
        if (
            isinstance(coding, Mapping)
            and coding.get("code") in VER_STATUS_EXCLUDED
            and coding.get("system") in (None, VER_STATUS_SYSTEM)
        ):
            return True
    return False


def withdrawn(resource: Mapping[str, Any]) -> bool:
    """True when a stored Condition or Observation has been withdrawn: a Condition refuted or
    entered in error, an Observation cancelled or entered in error. Other types never are."""
    rtype = resource.get("resourceType")
    if rtype == "Condition":
        return verification_excluded(resource.get("verificationStatus"))
    if rtype == "Observation":
        return resource.get("status") in OBSERVATION_WITHDRAWN
    return False
