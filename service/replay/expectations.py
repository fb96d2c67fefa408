"""Expected alerts (`*.expect.json`), the alerts a server actually holds, and the difference.

Pure functions over plain JSON, so the `replay` command and the fixture end-to-end test judge a
run by the same rules. The format is the one `fhir_fixtures/README.md` documents:

    {"fixture": "...", "description": "...", "asOf": "2026-06-01T12:00:00Z",
     "patients": [{"patient": "Patient/x", "alert": true, "priority": "urgent",
                   "findings": [...], "redFlags": [...], "evidence": [...]}]}

Lists compare as sets; omitted optional keys are not checked. `alert: false` means no active
Flag and no active CommunicationRequest; `alert: true` means exactly one active Flag.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from contract import (
    EVIDENCE_FOR_NAME,
    FINDING_EXTENSION_NAME,
    FLAG_DETAIL_URL,
    PRIORITY_ORDER,
    RED_FLAG_EXTENSION_NAME,
    extension_url_suffix,
)
from service.fhir.index import parse_date_range

# Our extensions are matched by their tail, so a server deployed under another base URL is
# judged by the same files (the names are the alert contract's, in `contract`).
RED_FLAG_URL_SUFFIX = extension_url_suffix(RED_FLAG_EXTENSION_NAME)
FINDING_URL_SUFFIX = extension_url_suffix(FINDING_EXTENSION_NAME)
EVIDENCE_FOR_URL_SUFFIX = extension_url_suffix(EVIDENCE_FOR_NAME)  # on a flag-detail Reference

EXPECT_SUFFIX = ".expect.json"
_PATIENT_KEYS = frozenset(
    {"patient", "alert", "priority", "findings", "redFlags", "evidence", "note"}
)


class ExpectationError(ValueError):
    """An expectation file that cannot be read or does not follow the format."""


@dataclass(frozen=True, slots=True)
class PatientExpectation:
    patient: str  # "Patient/<id>"
    alert: bool
    source: str  # the fixture name (or file name) it came from, for messages
    priority: str | None = None
    findings: frozenset[str] | None = None
    red_flags: frozenset[str] | None = None
    evidence: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Expectations:
    patients: dict[str, PatientExpectation]
    as_of: frozenset[str] = frozenset()  # every asOf the files named
    files: tuple[Path, ...] = ()

    @property
    def single_as_of(self) -> str | None:
        """The one evaluation time all files agree on, else None."""
        return next(iter(self.as_of)) if len(self.as_of) == 1 else None


@dataclass(frozen=True, slots=True)
class AlertSummary:
    """What a patient's active alert resources say, in the terms of an expectation."""

    patient: str
    flags: int = 0
    requests: int = 0
    priority: str | None = None
    findings: frozenset[str] = frozenset()
    red_flags: frozenset[str] = frozenset()
    evidence: frozenset[str] = frozenset()
    # evidence reference -> the finding codes it supports (the Flag's evidence-for marks);
    # empty for a Flag written before those marks existed
    supports: tuple[tuple[str, frozenset[str]], ...] = ()

    @property
    def alert(self) -> bool:
        return self.flags > 0 or self.requests > 0

    def evidence_of(self, finding: str) -> frozenset[str]:
        """The evidence references that support one finding."""
        return frozenset(ref for ref, codes in self.supports if finding in codes)

    @property
    def unpaired_evidence(self) -> frozenset[str]:
        """Evidence that names no finding of this alert (older Flags, or a finding whose
        request is no longer active)."""
        paired = {ref for ref, codes in self.supports if codes & self.findings}
        return self.evidence - paired


@dataclass(frozen=True, slots=True)
class Mismatch:
    patient: str
    field: str
    expected: str
    actual: str
    source: str = ""


# --- loading ---------------------------------------------------------------------------------


def expectation_files(path: Path) -> list[Path]:
    """`path` itself, or the `*.expect.json` under a folder (sorted)."""
    if path.is_dir():
        return sorted(p for p in path.rglob(f"*{EXPECT_SUFFIX}") if p.is_file())
    if path.is_file():
        return [path]
    raise ExpectationError(f"{path}: no such file or folder")


def _codes(value: Any, where: str) -> frozenset[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ExpectationError(f"{where}: must be a list of strings")
    return frozenset(value)


def parse_patient(item: Any, source: str, where: str) -> PatientExpectation:
    if not isinstance(item, Mapping):
        raise ExpectationError(f"{where}: must be an object")
    unknown = sorted(set(item) - _PATIENT_KEYS)
    if unknown:
        raise ExpectationError(f"{where}: unknown keys {unknown}")
    ref = item.get("patient")
    if not isinstance(ref, str) or not ref.startswith("Patient/") or ref == "Patient/":
        raise ExpectationError(f"{where}.patient: must be 'Patient/<id>'")
    alert = item.get("alert")
    if not isinstance(alert, bool):
        raise ExpectationError(f"{where}.alert: must be true or false")
    priority = item.get("priority")
    if priority is not None and priority not in PRIORITY_ORDER:
        raise ExpectationError(f"{where}.priority: must be one of {', '.join(PRIORITY_ORDER)}")
    return PatientExpectation(
        patient=ref,
        alert=alert,
        source=source,
        priority=priority,
        findings=_codes(item.get("findings"), f"{where}.findings"),
        red_flags=_codes(item.get("redFlags"), f"{where}.redFlags"),
        evidence=_codes(item.get("evidence"), f"{where}.evidence"),
    )


def parse_expectation(data: Any, name: str) -> tuple[str | None, list[PatientExpectation]]:
    """One file's content: (asOf, patients). `name` labels messages and mismatches."""
    if not isinstance(data, Mapping):
        raise ExpectationError(f"{name}: must be a JSON object")
    patients = data.get("patients")
    if not isinstance(patients, list):
        raise ExpectationError(f"{name}: 'patients' must be a list")
    as_of = data.get("asOf")
    if as_of is not None and not isinstance(as_of, str):
        raise ExpectationError(f"{name}: 'asOf' must be a dateTime string")
    source = data.get("fixture") if isinstance(data.get("fixture"), str) else name
    assert isinstance(source, str)
    return as_of, [
        parse_patient(p, source, f"{name}: patients[{i}]") for i, p in enumerate(patients)
    ]


def load_expectations(path: Path | str) -> Expectations:
    """A file, or a folder whose `*.expect.json` are merged (a patient may appear once, or
    several times with the same expectation)."""
    files = expectation_files(Path(path))
    if not files:
        raise ExpectationError(f"{path}: no *{EXPECT_SUFFIX} files")
    merged: dict[str, PatientExpectation] = {}
    as_of: set[str] = set()
    for f in files:
        try:
            data = orjson.loads(f.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ExpectationError(f"{f}: cannot be read as JSON ({exc})") from None
        file_as_of, patients = parse_expectation(data, f.name)
        if file_as_of:
            as_of.add(file_as_of)
        for p in patients:
            seen = merged.get(p.patient)
            if seen is not None and _comparable(seen) != _comparable(p):
                raise ExpectationError(
                    f"{f.name}: {p.patient} is also expected by {seen.source}, differently"
                )
            merged.setdefault(p.patient, p)
    return Expectations(merged, frozenset(as_of), tuple(files))


def _comparable(p: PatientExpectation) -> tuple[Any, ...]:
    return (p.alert, p.priority, p.findings, p.red_flags, p.evidence)


# --- what the server holds -------------------------------------------------------------------


def _patient_ref(resource: Mapping[str, Any]) -> str | None:
    subject = resource.get("subject")
    ref = subject.get("reference") if isinstance(subject, Mapping) else None
    if not isinstance(ref, str):
        return None
    parts = ref.split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) >= 2 and parts[-2] == "Patient" and parts[-1]:
        return f"Patient/{parts[-1]}"
    return None


def _concept_codes(concept: Any) -> set[str]:
    if not isinstance(concept, Mapping):
        return set()
    return {
        c["code"]
        for c in concept.get("coding") or []
        if isinstance(c, Mapping) and isinstance(c.get("code"), str)
    }


def _extensions(resource: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [e for e in resource.get("extension") or [] if isinstance(e, Mapping)]


def _extension_codes(resource: Mapping[str, Any], url_suffix: str) -> set[str]:
    out: set[str] = set()
    for ext in _extensions(resource):
        url = ext.get("url")
        if isinstance(url, str) and url.endswith(url_suffix):
            out |= _concept_codes(ext.get("valueCodeableConcept"))
    return out


def _evidence(flag: Mapping[str, Any]) -> dict[str, set[str]]:
    """Evidence reference -> the finding codes its flag-detail says it supports."""
    out: dict[str, set[str]] = {}
    for ext in _extensions(flag):
        value = ext.get("valueReference")
        if ext.get("url") == FLAG_DETAIL_URL and isinstance(value, Mapping):
            ref = value.get("reference")
            if isinstance(ref, str):
                codes = out.setdefault(ref, set())
                for mark in _extensions(value):
                    url, code = mark.get("url"), mark.get("valueCode")
                    marked = isinstance(url, str) and url.endswith(EVIDENCE_FOR_URL_SUFFIX)
                    if marked and isinstance(code, str):
                        codes.add(code)
    return out


def _instant(value: Any) -> datetime:
    rng = parse_date_range(value) if isinstance(value, str) else None
    return rng.start if rng is not None else datetime.min


def _newest_key(request: Mapping[str, Any]) -> tuple[datetime, datetime, str]:
    """Sort key: authoredOn, then meta.lastUpdated (as instants, whatever their precision or
    offset), then id."""
    meta = request.get("meta")
    updated = meta.get("lastUpdated") if isinstance(meta, Mapping) else None
    return (_instant(request.get("authoredOn")), _instant(updated), str(request.get("id") or ""))


def actual_alerts(
    flags: Iterable[Mapping[str, Any]], requests: Iterable[Mapping[str, Any]]
) -> dict[str, AlertSummary]:
    """Per patient ("Patient/<id>"), what the *active* Flags and CommunicationRequests say.

    priority: the newest active request's; findings: the codes in active requests' reasonCode
    (the Flag's own finding extensions when no request is active); red flags and evidence: the
    active Flag's red-flag and flag-detail extensions. Resources that are not active, or whose
    subject is not a Patient, are ignored.
    """
    active_flags: dict[str, list[Mapping[str, Any]]] = {}
    active_requests: dict[str, list[Mapping[str, Any]]] = {}
    for flag in flags:
        ref = _patient_ref(flag)
        if ref and flag.get("status") == "active":
            active_flags.setdefault(ref, []).append(flag)
    for req in requests:
        ref = _patient_ref(req)
        if ref and req.get("status") == "active":
            active_requests.setdefault(ref, []).append(req)
    out: dict[str, AlertSummary] = {}
    for patient in sorted(set(active_flags) | set(active_requests)):
        pflags = active_flags.get(patient, [])
        preqs = active_requests.get(patient, [])
        findings: set[str] = set()
        for req in preqs:
            for reason in req.get("reasonCode") or []:
                findings |= _concept_codes(reason)
        if not preqs:
            for flag in pflags:
                findings |= _extension_codes(flag, FINDING_URL_SUFFIX)
        newest = max(preqs, key=_newest_key) if preqs else None
        priority = newest.get("priority") if newest is not None else None
        red_flags: set[str] = set()
        evidence: dict[str, set[str]] = {}
        for flag in pflags:
            red_flags |= _extension_codes(flag, RED_FLAG_URL_SUFFIX)
            for ref, codes in _evidence(flag).items():
                evidence.setdefault(ref, set()).update(codes)
        out[patient] = AlertSummary(
            patient=patient,
            flags=len(pflags),
            requests=len(preqs),
            priority=priority if isinstance(priority, str) else None,
            findings=frozenset(findings),
            red_flags=frozenset(red_flags),
            evidence=frozenset(evidence),
            supports=tuple(sorted((ref, frozenset(c)) for ref, c in evidence.items())),
        )
    return out


# --- comparing -------------------------------------------------------------------------------


def show_set(values: frozenset[str] | None) -> str:
    if values is None:
        return "-"
    return ", ".join(sorted(values)) if values else "(none)"


def _describe(actual: AlertSummary) -> str:
    if not actual.alert:
        return "no alert"
    parts = [f"{actual.flags} active Flag(s)", f"{actual.requests} active request(s)"]
    if actual.priority:
        parts.append(actual.priority)
    if actual.findings:
        parts.append(show_set(actual.findings))
    return "alert: " + ", ".join(parts)


def diff_patient(expected: PatientExpectation, actual: AlertSummary | None) -> list[Mismatch]:
    got = actual or AlertSummary(expected.patient)

    def miss(field_name: str, want: str, have: str) -> Mismatch:
        return Mismatch(expected.patient, field_name, want, have, expected.source)

    if not expected.alert:
        return [] if not got.alert else [miss("alert", "no alert", _describe(got))]
    if got.flags != 1:
        want = "exactly one active Flag"
        return [miss("alert", want, _describe(got) if got.alert else "no alert")]
    out: list[Mismatch] = []
    if expected.priority is not None and got.priority != expected.priority:
        out.append(miss("priority", expected.priority, got.priority or "(no active request)"))
    checks: Sequence[tuple[str, frozenset[str] | None, frozenset[str]]] = (
        ("findings", expected.findings, got.findings),
        ("redFlags", expected.red_flags, got.red_flags),
        ("evidence", expected.evidence, got.evidence),
    )
    for name, want_set, have_set in checks:
        if want_set is not None and want_set != have_set:
            out.append(miss(name, show_set(want_set), show_set(have_set)))
    return out


def diff(
    expected: Mapping[str, PatientExpectation] | Expectations,
    actual: Mapping[str, AlertSummary],
) -> list[Mismatch]:
    """Every difference, ordered by patient then field; empty when the run matches."""
    wanted = expected.patients if isinstance(expected, Expectations) else expected
    out: list[Mismatch] = []
    for patient in sorted(wanted):
        out.extend(diff_patient(wanted[patient], actual.get(patient)))
    return out
