"""Who is told: the configured recipient, resolved through FHIR when it is a stored CareTeam.

`ALERTS_ONCOLOGY_TEAM` / `ALERTS_ESCALATION_RECIPIENT` name a reference. When that reference is
a CareTeam the EHR has posted to this server, the recipients are its `participant.member`s
that are Practitioners or PractitionerRoles (people and roles can be paged; an Organization
or a nested team cannot); otherwise, or when none qualifies, the configured reference itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from service.store import resources as store

PERSON_TYPES = ("Practitioner/", "PractitionerRole/")


def careteam_members(careteam: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The Practitioner / PractitionerRole members of an active (or unstated) CareTeam, in
    order, without repeats. Pure."""
    if careteam is None or careteam.get("status") in ("inactive", "suspended", "entered-in-error"):
        return ()
    found: list[str] = []
    for participant in careteam.get("participant") or ():
        member = participant.get("member") if isinstance(participant, Mapping) else None
        ref = member.get("reference") if isinstance(member, Mapping) else None
        if isinstance(ref, str) and ref.startswith(PERSON_TYPES) and ref not in found:
            found.append(ref)
    return tuple(found)


def recipients(session: Session, target: str) -> tuple[str, ...]:
    """The members of the stored CareTeam `target`, else `(target,)`."""
    if target.startswith("CareTeam/"):
        stored = store.read(session, "CareTeam", target.removeprefix("CareTeam/"))
        if stored is not None and not stored.deleted:
            members = careteam_members(stored.json())
            if members:
                return members
    return (target,)
