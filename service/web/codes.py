"""The alert strings the worklist reads (the contract spelled in `workers/alerts/codes.py`).

Repeated here so the web layer stays importable on its own (the service never imports the
worker side); `tests/web/test_codes.py` fails if the two ever differ.
"""

from __future__ import annotations

from typing import Final

_SD: Final = "https://fhir-alerts.example.org/fhir/StructureDefinition"

FLAG_CODE: Final = "bone-metastasis-risk"
ALERT_PRIORITY_URL: Final = f"{_SD}/alert-priority"
FINDING_EXTENSION_URL: Final = f"{_SD}/alert-finding"
RED_FLAG_EXTENSION_URL: Final = f"{_SD}/red-flag"
FLAG_DETAIL_URL: Final = "http://hl7.org/fhir/StructureDefinition/flag-detail"
COMMUNICATION_CATEGORY_SYSTEM: Final = (
    "http://terminology.hl7.org/CodeSystem/communication-category"
)
OPEN_COMMUNICATION_STATUSES: Final = frozenset({"active", "on-hold"})
# The note the worklist adds to a CommunicationRequest it completes: who acknowledged, and when.
ACK_NOTE_TEXT: Final = "Acknowledged on the oncology worklist"
