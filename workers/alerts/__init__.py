"""The alert life cycle: concern episodes, and the FHIR Flags and CommunicationRequests they make.

Pure: no database, no clock, no randomness. `evaluate_patient` reads a `PatientRecord`, calls
`evaluate_record` (close if ended, assess, withdraw, decide), applies the Plans' writes and saves
the episode state.
"""

from workers.alerts.episodes import close_if_ended, decide
from workers.alerts.plan import Plan, ResourceWrite
from workers.alerts.record import Decision, PatientRecord, engine_assessment, evaluate_record
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
    "Decision",
    "EpisodeFinding",
    "EpisodeState",
    "EvidenceRecord",
    "PatientRecord",
    "Plan",
    "PriorityChange",
    "RecordedRedFlag",
    "ResourceWrite",
    "close_if_ended",
    "decide",
    "engine_assessment",
    "evaluate_record",
]
