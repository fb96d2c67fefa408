"""Code systems, extension URLs and display words that the alerts carry.

They are part of the service's public contract (spec §7): receivers filter, route and count on
these exact strings, so each is spelled once, here. The service's own code systems and
extensions live under one base URL; HL7's own systems are used wherever HL7 has one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from workers.rules.model import FindingCode, Priority, RedFlagCode

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

# --- Extensions (ours) -----------------------------------------------------------------------
RULESET_VERSION_URL: Final = f"{STRUCTURE_DEFINITION_BASE}/ruleset-version"  # valueString
ALERT_PRIORITY_URL: Final = f"{STRUCTURE_DEFINITION_BASE}/alert-priority"  # valueCode
FINDING_EXTENSION_URL: Final = f"{STRUCTURE_DEFINITION_BASE}/alert-finding"  # valueCodeableConcept
RED_FLAG_EXTENSION_URL: Final = f"{STRUCTURE_DEFINITION_BASE}/red-flag"  # valueCodeableConcept
# Complex: sub-extensions "from" (valueCode, absent when the episode opened), "to" (valueCode),
# "reason" (valueString), "date" (valueDateTime). One per priority change, oldest first.
PRIORITY_HISTORY_URL: Final = f"{STRUCTURE_DEFINITION_BASE}/priority-history"
CLOSURE_REASON_URL: Final = f"{STRUCTURE_DEFINITION_BASE}/closure-reason"  # valueString
# On a flag-detail valueReference: the finding code(s) that evidence record supports
# (valueCode, one extension per finding), so readers can pair each finding with its evidence.
EVIDENCE_FOR_URL: Final = f"{STRUCTURE_DEFINITION_BASE}/evidence-for"

# --- HL7 ------------------------------------------------------------------------------------
FLAG_CATEGORY_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/flag-category"
COMMUNICATION_CATEGORY_SYSTEM: Final = (
    "http://terminology.hl7.org/CodeSystem/communication-category"
)
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

# --- Words ------------------------------------------------------------------------------------
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

# CommunicationRequest statuses in which a request still asks someone to act. Only these are
# ever revoked by the service; completed (acknowledged) requests are never touched again.
OPEN_COMMUNICATION_STATUSES: Final = frozenset({"active", "on-hold"})
