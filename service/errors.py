"""Errors that know their HTTP status and OperationOutcome.

Every failure a client can cause is raised as a `FHIRError`; the API turns it into an
OperationOutcome with the status of the contract. Messages name element paths and codes, never
values from the resource, so an error body or log line cannot leak patient data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Issue:
    severity: str  # fatal | error | warning | information
    code: str  # FHIR issue-type: invalid, required, structure, value, not-found, conflict...
    diagnostics: str
    expression: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": self.diagnostics,
        }
        if self.expression:
            out["expression"] = list(self.expression)
        return out


def operation_outcome(issues: list[Issue] | tuple[Issue, ...]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [i.to_json() for i in issues]}


@dataclass
class FHIRError(Exception):
    status: int
    issues: list[Issue] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:  # pragma: no cover - debugging aid
        return f"{self.status}: " + "; ".join(i.diagnostics for i in self.issues)

    def operation_outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)

    @classmethod
    def of(
        cls,
        status: int,
        code: str,
        diagnostics: str,
        expression: tuple[str, ...] = (),
        headers: dict[str, str] | None = None,
    ) -> FHIRError:
        return cls(status, [Issue("error", code, diagnostics, expression)], headers or {})


def bad_request(msg: str, expression: tuple[str, ...] = ()) -> FHIRError:
    return FHIRError.of(400, "invalid", msg, expression)


def not_found(msg: str) -> FHIRError:
    return FHIRError.of(404, "not-found", msg)


def unprocessable(issues: list[Issue]) -> FHIRError:
    return FHIRError(422, issues)


def conflict(msg: str) -> FHIRError:
    return FHIRError.of(409, "conflict", msg)


def precondition_failed(msg: str) -> FHIRError:
    return FHIRError.of(412, "conflict", msg)
