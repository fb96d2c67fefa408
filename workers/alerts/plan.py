"""What a decision asks the task to do: writes, the episode state to save, and log words.

The decision is pure; the task applies a Plan inside its transaction. Every update carries the
versionId the decision was based on, so a nurse's concurrent change makes the write fail (and
the task retry on fresh state) instead of being overwritten.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from workers.alerts.state import EpisodeState

# The words a Plan's events use, for the evaluation log and metrics.
EVENTS: tuple[str, ...] = (
    "opened",  # a new episode: Flag and CommunicationRequest created
    "escalated",  # the episode's priority rose (a new CommunicationRequest)
    "finding-added",  # a finding code the episode did not have (a new CommunicationRequest)
    "evidence-added",  # more evidence for a finding already notified (Flag update only)
    "red-flag-added",  # a red-flag qualifier joined the Flag (Flag update only)
    "retracted",  # recorded evidence was withdrawn; the episode was recomputed
    "priority-lowered",  # only ever after a retraction, recorded on the Flag with its reason
    "superseded",  # open CommunicationRequests were revoked and replaced by a new one
    "revoked",  # open CommunicationRequests were revoked with nothing replacing them
    "closed",  # the episode ended (nurse closed the Flag, or nothing was left)
    "unchanged",  # an open episode that the assessment does not change: no writes
)


@dataclass(frozen=True, slots=True)
class ResourceWrite:
    """One create (`if_match` None) or one update guarded by the expected current versionId.

    `resource` is the full resource body without meta.versionId/lastUpdated: the store owns meta.
    """

    resource_type: str
    id: str
    resource: dict[str, Any]
    if_match: str | None = None

    @property
    def is_create(self) -> bool:
        return self.if_match is None

    @property
    def reference(self) -> str:
        return f"{self.resource_type}/{self.id}"


@dataclass(frozen=True, slots=True)
class Plan:
    """The outcome of one decision. An empty Plan (no writes, no episode) means nothing to do."""

    writes: tuple[ResourceWrite, ...] = ()
    episode: EpisodeState | None = None  # the state to save (None: no episode to save)
    events: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.writes and self.episode is None and not self.events


def stored_version(resource: Mapping[str, Any]) -> str:
    """The stored versionId an update must match; without one an update could become a create."""
    meta = resource.get("meta")
    version = meta.get("versionId") if isinstance(meta, Mapping) else None
    if not isinstance(version, str) or not version:
        raise ValueError(
            f"stored {resource.get('resourceType')}/{resource.get('id')} has no meta.versionId"
        )
    return version
