"""The alert contract: every string and order the alerts, the worklist and replay agree on.

Receivers filter, route and count on these exact strings (clinical-rules §7), so each is spelled
once, here: alert, finding and red-flag codes with their display words, priorities and their
order, the extension URLs and code systems on Flags and CommunicationRequests, and the names of
the rule set's value sets. The numbers (thresholds, windows, limits, unit factors, recommended
actions) are not here: they are rule-set data, in `ruleset/data/ruleset-v1.json`.

Standard library only, so `workers.alerts`, `service.web` and `service.replay` can all import it
without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

# --- Priorities (FHIR request-priority), least pressing first --------------------------------
Priority = Literal["routine", "urgent", "asap", "stat"]
PRIORITY_ORDER: Final[tuple[Priority, ...]] = ("routine", "urgent", "asap", "stat")


def priority_rank(priority: Priority) -> int:
    """Position in routine < urgent < asap < stat, so priorities compare as numbers."""
    return PRIORITY_ORDER.index(priority)


# --- Finding and red-flag codes (clinical-rules §5, §7) ---------------------------------------
FindingCode = Literal[
    "new-back-pain", "suspected-mscc", "hypercalcemia", "rising-calcium", "rising-alp"
]
FINDING_CODES: Final[tuple[FindingCode, ...]] = (
    "new-back-pain",
    "suspected-mscc",
    "hypercalcemia",
    "rising-calcium",
    "rising-alp",
)

RedFlagCode = Literal["high-spine-back-pain", "weight-loss", "progressive-pain", "ggt-raised"]
RED_FLAG_CODES: Final[tuple[RedFlagCode, ...]] = (
    "high-spine-back-pain",
    "weight-loss",
    "progressive-pain",
    "ggt-raised",
)

FINDING_DISPLAY: Final[Mapping[FindingCode, str]] = {
    "new-back-pain": "New back pain",
    "suspected-mscc": "Suspected metastatic spinal cord compression (MSCC)",
    "hypercalcemia": "Raised calcium (hypercalcaemia)",
    "rising-calcium": "Rising calcium",
    "rising-alp": "Rising alkaline phosphatase (ALP)",
}

RED_FLAG_DISPLAY: Final[Mapping[RedFlagCode, str]] = {
    "high-spine-back-pain": "Pain in the upper back or neck (thoracic or cervical spine)",
    "weight-loss": "Unexplained weight loss",
    "progressive-pain": "Progressive pain (severity up by 2 or more points within 30 days)",
    "ggt-raised": "GGT raised together with ALP (the rise may be from the liver)",
}

# --- Value-set names: the keys of the rule set's "value_sets" (clinical-rules §3) -------------
BREAST_CANCER: Final = "BREAST_CANCER"
KNOWN_BONE_METASTASIS: Final = "KNOWN_BONE_METASTASIS"
BACK_PAIN: Final = "BACK_PAIN"
BACK_PAIN_HIGH_SPINE: Final = "BACK_PAIN_HIGH_SPINE"
NEURO_DEFICIT: Final = "NEURO_DEFICIT"
WEIGHT_LOSS: Final = "WEIGHT_LOSS"
CALCIUM_TOTAL: Final = "CALCIUM_TOTAL"
CALCIUM_CORRECTED: Final = "CALCIUM_CORRECTED"
CALCIUM_IONIZED: Final = "CALCIUM_IONIZED"
ALBUMIN: Final = "ALBUMIN"
ALP: Final = "ALP"
GGT: Final = "GGT"
PAIN_SEVERITY: Final = "PAIN_SEVERITY"
BACK_BODY_SITE: Final = "BACK_BODY_SITE"
VALUE_SET_NAMES: Final = frozenset(
    {
        BREAST_CANCER,
        KNOWN_BONE_METASTASIS,
        BACK_PAIN,
        BACK_PAIN_HIGH_SPINE,
        NEURO_DEFICIT,
        WEIGHT_LOSS,
        CALCIUM_TOTAL,
        CALCIUM_CORRECTED,
        CALCIUM_IONIZED,
        ALBUMIN,
        ALP,
        GGT,
        PAIN_SEVERITY,
        BACK_BODY_SITE,
    }
)

# --- The service's own namespace -------------------------------------------------------------
SERVICE_BASE_URL: Final = "https://fhir-alerts.example.org/fhir"
CODE_SYSTEM_BASE: Final = f"{SERVICE_BASE_URL}/CodeSystem"
STRUCTURE_DEFINITION_BASE: Final = f"{SERVICE_BASE_URL}/StructureDefinition"

# Code-system names under the (configurable) code-system base: see AlertSettings.
ALERT_CODE_SYSTEM_NAME: Final = "alert"  # the Flag code
FINDING_CODE_SYSTEM_NAME: Final = "finding"  # new-back-pain, suspected-mscc, ...
RED_FLAG_CODE_SYSTEM_NAME: Final = "red-flag"  # high-spine-back-pain, weight-loss, ...

# Identifies one concern episode on its Flag and CommunicationRequests (identifier /
# groupIdentifier), so a worklist can group every request of an episode with one search.
EPISODE_IDENTIFIER_SYSTEM: Final = f"{SERVICE_BASE_URL}/episode"

FLAG_CODE: Final = "bone-metastasis-risk"
FLAG_DISPLAY: Final = "Possible bone metastasis: oncology review"

# --- Extensions (ours): the URL is the base plus the name ------------------------------------
RULESET_VERSION_NAME: Final = "ruleset-version"  # valueString
ALERT_PRIORITY_NAME: Final = "alert-priority"  # valueCode
FINDING_EXTENSION_NAME: Final = "alert-finding"  # valueCodeableConcept
RED_FLAG_EXTENSION_NAME: Final = "red-flag"  # valueCodeableConcept
# Complex: sub-extensions "from" (valueCode, absent when the episode opened), "to" (valueCode),
# "reason" (valueString), "date" (valueDateTime). One per priority change, oldest first.
PRIORITY_HISTORY_NAME: Final = "priority-history"
CLOSURE_REASON_NAME: Final = "closure-reason"  # valueString
# On a flag-detail valueReference: the finding code(s) that evidence record supports
# (valueCode, one extension per finding), so readers can pair each finding with its evidence.
EVIDENCE_FOR_NAME: Final = "evidence-for"

RULESET_VERSION_URL: Final = f"{STRUCTURE_DEFINITION_BASE}/{RULESET_VERSION_NAME}"
ALERT_PRIORITY_URL: Final = f"{STRUCTURE_DEFINITION_BASE}/{ALERT_PRIORITY_NAME}"
FINDING_EXTENSION_URL: Final = f"{STRUCTURE_DEFINITION_BASE}/{FINDING_EXTENSION_NAME}"
RED_FLAG_EXTENSION_URL: Final = f"{STRUCTURE_DEFINITION_BASE}/{RED_FLAG_EXTENSION_NAME}"
PRIORITY_HISTORY_URL: Final = f"{STRUCTURE_DEFINITION_BASE}/{PRIORITY_HISTORY_NAME}"
CLOSURE_REASON_URL: Final = f"{STRUCTURE_DEFINITION_BASE}/{CLOSURE_REASON_NAME}"
EVIDENCE_FOR_URL: Final = f"{STRUCTURE_DEFINITION_BASE}/{EVIDENCE_FOR_NAME}"


def extension_url_suffix(name: str) -> str:
    """The tail every deployment's URL for one of our extensions ends in, whatever its base
    ("/StructureDefinition/red-flag"): replay reads other deployments' alerts by it."""
    return f"/StructureDefinition/{name}"


# --- HL7 ------------------------------------------------------------------------------------
FLAG_CATEGORY_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/flag-category"
COMMUNICATION_CATEGORY_SYSTEM: Final = (
    "http://terminology.hl7.org/CodeSystem/communication-category"
)
ALERT_CATEGORY_CODE: Final = "alert"  # CommunicationRequest.category of every alert request
# The same category as a FHIR token search value (`category=system|code`): how the worklist and
# the CDS Hooks service find alert requests among other CommunicationRequests.
ALERT_CATEGORY_TOKEN: Final = f"{COMMUNICATION_CATEGORY_SYSTEM}|{ALERT_CATEGORY_CODE}"
FLAG_DETAIL_URL: Final = "http://hl7.org/fhir/StructureDefinition/flag-detail"
# HL7's standard Flag priority extension, so generic FHIR clients can sort Flags too; it is
# coarser than ours (four levels map onto three), which is why ALERT_PRIORITY_URL exists.
FLAG_PRIORITY_URL: Final = "http://hl7.org/fhir/StructureDefinition/flag-priority"
FLAG_PRIORITY_SYSTEM: Final = "http://hl7.org/fhir/flag-priority-code"

FLAG_PRIORITY_CODES: Final[Mapping[Priority, tuple[str, str]]] = {
    "routine": ("PL", "Low priority"),
    "urgent": ("PM", "Medium priority"),
    "asap": ("PH", "High priority"),
    "stat": ("PH", "High priority"),
}

# CommunicationRequest statuses in which a request still asks someone to act. Only these are
# ever revoked by the service; completed (acknowledged) requests are never touched again.
OPEN_COMMUNICATION_STATUSES: Final = frozenset({"active", "on-hold"})

# The note the worklist adds to a CommunicationRequest it completes: who acknowledged, and when.
ACK_NOTE_TEXT: Final = "Acknowledged on the oncology worklist"


# --- Dismissing an alert with a reason (issue 13; CDS Hooks overrideReasons use the same) -----
# A nurse closes an alert with one of these (coded statusReason / note on the
# CommunicationRequest), like CDS Hooks' override reasons; reports count them.
DISMISS_REASON_CODE_SYSTEM_NAME: Final = "dismiss-reason"
DismissReason = Literal[
    "already-known",
    "not-clinically-relevant",
    "duplicate",
    "patient-deceased",
    "patient-transferred",
    "other",
]
DISMISS_REASONS: Final[Mapping[DismissReason, str]] = {
    "already-known": "Already known to the oncology team",
    "not-clinically-relevant": "Not clinically relevant for this patient",
    "duplicate": "Duplicate of another alert",
    "patient-deceased": "Patient deceased",
    "patient-transferred": "Patient transferred to another service",
    "other": "Other (reason given in text)",
}


# --- Deadlines, escalation and snooze (issue 13) ----------------------------------------------
# An escalation CommunicationRequest carries this identifier, value "<original id>@<deadline>"
# (the deadline as a FHIR instant): one escalation per request and deadline, found again by it.
ESCALATION_IDENTIFIER_SYSTEM: Final = f"{SERVICE_BASE_URL}/escalation"
# On the Flag, one per escalation, oldest first. Complex: sub-extensions "request"
# (valueReference, the request nobody acknowledged), "escalation" (valueReference, the new
# request), "deadline" (valueDateTime, when it fell due), "date" (valueDateTime, when escalated),
# "to" (valueCode, the escalation's priority).
ESCALATION_NAME: Final = "alert-escalation"
ESCALATION_URL: Final = f"{STRUCTURE_DEFINITION_BASE}/{ESCALATION_NAME}"
# On a snoozed (`on-hold`) CommunicationRequest: when it becomes `active` again (valueDateTime).
SNOOZE_UNTIL_NAME: Final = "snooze-until"
SNOOZE_UNTIL_URL: Final = f"{STRUCTURE_DEFINITION_BASE}/{SNOOZE_UNTIL_NAME}"
