"""The alert life cycle: concern episodes, and the FHIR Flags and CommunicationRequests they make.

Pure: no database, no clock, no randomness. `evaluate_patient` loads, calls `close_if_ended` and
`decide`, applies the Plan's writes and saves its episode state.
"""

from workers.alerts.episodes import close_if_ended, decide
from workers.alerts.plan import Plan, ResourceWrite
from workers.alerts.settings import AlertSettings
from workers.alerts.state import (
    CommunicationRecord,
    EpisodeFinding,
    EpisodeState,
    EvidenceRecord,
    PriorityChange,
    RecordedRedFlag,
)

__all__ = [
    "AlertSettings",
    "CommunicationRecord",
    "EpisodeFinding",
    "EpisodeState",
    "EvidenceRecord",
    "Plan",
    "PriorityChange",
    "RecordedRedFlag",
    "ResourceWrite",
    "close_if_ended",
    "decide",
]
