"""What the store refuses, in its own terms.

The store knows versions and rows, not HTTP: it raises these, and the FHIR layer
(`service.interactions.fhir_error`) answers them with the contract's status and
OperationOutcome (412, 409). The worker catches them by type, never by a status code.
"""

from __future__ import annotations


class StoreError(Exception):
    """A write the store refused; nothing of it was stored."""

    def __init__(self, resource_type: str, resource_id: str, message: str) -> None:
        super().__init__(message)
        self.resource_type = resource_type
        self.resource_id = resource_id


class VersionMismatch(StoreError):
    """The writer's expected version (If-Match) is not the current one (optimistic locking):
    someone else changed the resource since the writer read it, or it does not exist."""

    def __init__(
        self, resource_type: str, resource_id: str, *, expected: str, current: int | None
    ) -> None:
        message = (
            "If-Match given but the resource does not exist"
            if current is None
            else f"Version conflict: If-Match {expected} but the current version is {current}"
        )
        super().__init__(resource_type, resource_id, message)
        self.expected = expected
        self.current = current


class Conflict(StoreError):
    """A concurrent writer created the same resource first (its row exists now); the losing
    transaction must roll back, and a retry sees the row."""

    def __init__(self, resource_type: str, resource_id: str) -> None:
        super().__init__(
            resource_type,
            resource_id,
            "A concurrent write changed this resource; nothing was stored",
        )
