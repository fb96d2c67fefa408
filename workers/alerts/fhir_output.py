"""FHIR R4 Flag and CommunicationRequest bodies built from an episode's state.

Resources are derived from the state, never from the assessment directly, so the same state
always gives the same resource: that is what keeps a repeated evaluation from rewriting them.
When updating, fields the service does not own (a nurse's additions, foreign extensions) are
carried over from the stored resource.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from contract import (
    ALERT_CATEGORY_CODE,
    ALERT_PRIORITY_URL,
    CLOSURE_REASON_URL,
    COMMUNICATION_CATEGORY_SYSTEM,
    EPISODE_IDENTIFIER_SYSTEM,
    EVIDENCE_FOR_URL,
    FINDING_DISPLAY,
    FINDING_EXTENSION_URL,
    FLAG_CATEGORY_SYSTEM,
    FLAG_CODE,
    FLAG_DETAIL_URL,
    FLAG_DISPLAY,
    FLAG_PRIORITY_CODES,
    FLAG_PRIORITY_SYSTEM,
    FLAG_PRIORITY_URL,
    PRIORITY_HISTORY_URL,
    RED_FLAG_DISPLAY,
    RED_FLAG_EXTENSION_URL,
)
from workers.alerts.settings import AlertSettings
from workers.alerts.state import CommunicationRecord, EpisodeState, PriorityChange

JSON = dict[str, Any]


def fhir_datetime(value: datetime) -> str:
    """A FHIR dateTime/instant in UTC; naive datetimes are a bug upstream, so they are refused."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: the alert logic only handles aware times")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def without_store_meta(resource: Mapping[str, Any]) -> JSON:
    """A copy without meta.versionId/lastUpdated, which the store sets on every write."""
    body = dict(resource)
    meta = body.pop("meta", None)
    if isinstance(meta, Mapping):
        kept = {k: v for k, v in meta.items() if k not in ("versionId", "lastUpdated")}
        if kept:
            body["meta"] = kept
    return body


def _device(settings: AlertSettings) -> JSON:
    return {"reference": settings.device, "display": settings.device_display}


def _episode_identifier(state: EpisodeState) -> JSON:
    return {"system": EPISODE_IDENTIFIER_SYSTEM, "value": state.id}


def _owned_flag_extension_urls(settings: AlertSettings) -> frozenset[str]:
    return frozenset(
        {
            settings.ruleset_extension_url,
            ALERT_PRIORITY_URL,
            FLAG_PRIORITY_URL,
            FINDING_EXTENSION_URL,
            RED_FLAG_EXTENSION_URL,
            PRIORITY_HISTORY_URL,
            CLOSURE_REASON_URL,
            FLAG_DETAIL_URL,
        }
    )


def _history_extension(change: PriorityChange) -> JSON:
    parts: list[JSON] = []
    if change.from_priority is not None:
        parts.append({"url": "from", "valueCode": change.from_priority})
    parts.append({"url": "to", "valueCode": change.to_priority})
    parts.append({"url": "reason", "valueString": change.reason})
    parts.append({"url": "date", "valueDateTime": fhir_datetime(change.at)})
    return {"url": PRIORITY_HISTORY_URL, "extension": parts}


def _flag_extensions(state: EpisodeState, settings: AlertSettings) -> list[JSON]:
    flag_priority, flag_priority_display = FLAG_PRIORITY_CODES[state.priority]
    extensions: list[JSON] = [
        {"url": settings.ruleset_extension_url, "valueString": state.ruleset_version},
        {"url": ALERT_PRIORITY_URL, "valueCode": state.priority},
        {
            "url": FLAG_PRIORITY_URL,
            "valueCodeableConcept": {
                "coding": [
                    {
                        "system": FLAG_PRIORITY_SYSTEM,
                        "code": flag_priority,
                        "display": flag_priority_display,
                    }
                ],
                "text": state.priority,
            },
        },
    ]
    for finding in state.findings:
        extensions.append(
            {
                "url": FINDING_EXTENSION_URL,
                "valueCodeableConcept": {
                    "coding": [
                        {
                            "system": settings.finding_system,
                            "code": finding.code,
                            "display": FINDING_DISPLAY[finding.code],
                        }
                    ],
                    "text": finding.reason,
                },
            }
        )
    for red_flag in state.red_flags:
        extensions.append(
            {
                "url": RED_FLAG_EXTENSION_URL,
                "valueCodeableConcept": {
                    "coding": [
                        {
                            "system": settings.red_flag_system,
                            "code": red_flag.code,
                            "display": RED_FLAG_DISPLAY[red_flag.code],
                        }
                    ],
                    "text": red_flag.text,
                },
            }
        )
    extensions.extend(_history_extension(change) for change in state.priority_history)
    # One flag-detail per evidence record (first occurrence order), naming the finding(s) it
    # supports in an evidence-for extension on the Reference.
    cited: dict[str, tuple[str, list[str]]] = {}
    for finding in state.findings:
        for evidence in finding.evidence:
            display, supports = cited.setdefault(evidence.reference, (evidence.display, []))
            if finding.code not in supports:
                supports.append(finding.code)
    for reference, (display, supports) in cited.items():
        extensions.append(
            {
                "url": FLAG_DETAIL_URL,
                "valueReference": {
                    "extension": [{"url": EVIDENCE_FOR_URL, "valueCode": c} for c in supports],
                    "reference": reference,
                    "display": display,
                },
            }
        )
    if state.closed_reason:
        extensions.append({"url": CLOSURE_REASON_URL, "valueString": state.closed_reason})
    return extensions


def build_flag(
    state: EpisodeState, *, settings: AlertSettings, stored: Mapping[str, Any] | None = None
) -> JSON:
    """The episode's Flag: `active` while open, `inactive` with period.end once closed.

    period.start is the earliest finding date; with nothing left (full retraction) the stored
    start is kept, since the Flag's period still says when the concern began.
    """
    base = without_store_meta(stored) if stored is not None else {}
    stored_period = base.get("period")
    stored_start = stored_period.get("start") if isinstance(stored_period, Mapping) else None
    if state.findings:
        start = fhir_datetime(min(f.date for f in state.findings))
    else:
        start = str(stored_start or fhir_datetime(state.opened_at))
    period: JSON = {"start": start}
    if state.status == "closed":
        period["end"] = fhir_datetime(state.closed_at or state.opened_at)

    owned = _owned_flag_extension_urls(settings)
    foreign = [
        e for e in base.get("extension", ()) if isinstance(e, Mapping) and e.get("url") not in owned
    ]
    flag: JSON = {"resourceType": "Flag", "id": state.flag_id}
    if "meta" in base:
        flag["meta"] = base["meta"]
    flag["extension"] = _flag_extensions(state, settings) + foreign
    flag["identifier"] = [_episode_identifier(state)] + [
        i
        for i in base.get("identifier", ())
        if isinstance(i, Mapping) and i.get("system") != EPISODE_IDENTIFIER_SYSTEM
    ]
    flag["status"] = "active" if state.status == "open" else "inactive"
    flag["category"] = [
        {"coding": [{"system": FLAG_CATEGORY_SYSTEM, "code": "clinical", "display": "Clinical"}]}
    ]
    flag["code"] = {
        "coding": [{"system": settings.alert_system, "code": FLAG_CODE, "display": FLAG_DISPLAY}],
        "text": FLAG_DISPLAY,
    }
    flag["subject"] = {"reference": state.patient}
    flag["period"] = period
    flag["author"] = _device(settings)
    for key, value in base.items():
        flag.setdefault(key, value)
    return flag


def build_communication_request(
    state: EpisodeState,
    record: CommunicationRecord,
    *,
    text: str,
    replaces: Sequence[str],
    settings: AlertSettings,
) -> JSON:
    """A new request to the oncology team about the episode as it stands (`record`)."""
    evidence = {e.reference: e.display for f in state.findings for e in f.evidence}
    request: JSON = {
        "resourceType": "CommunicationRequest",
        "id": record.id,
        "extension": [
            {"url": settings.ruleset_extension_url, "valueString": state.ruleset_version}
        ],
    }
    if replaces:
        request["replaces"] = [{"reference": ref} for ref in replaces]
    request |= {
        "groupIdentifier": _episode_identifier(state),
        "status": "active",
        "category": [
            {
                "coding": [
                    {
                        "system": COMMUNICATION_CATEGORY_SYSTEM,
                        "code": ALERT_CATEGORY_CODE,
                        "display": "Alert",
                    }
                ]
            }
        ],
        "priority": record.priority,
        "subject": {"reference": state.patient},
        "about": [{"reference": state.flag_reference, "display": FLAG_DISPLAY}],
        "payload": [{"contentString": text}],
        "authoredOn": fhir_datetime(record.authored_at),
        "requester": _device(settings),
        "recipient": [{"reference": r} for r in settings.alert_recipients],
        "sender": _device(settings),
        "reasonCode": [
            {
                "coding": [
                    {
                        "system": settings.finding_system,
                        "code": code,
                        "display": FINDING_DISPLAY[code],
                    }
                ],
                "text": FINDING_DISPLAY[code],
            }
            for code in record.finding_codes
        ],
        "reasonReference": [
            {"reference": ref, "display": evidence.get(ref, ref)} for ref in record.evidence_refs
        ],
    }
    return request


def revoked_communication_request(
    stored: Mapping[str, Any],
    *,
    status_reason: str,
    note: str,
    now: datetime,
    settings: AlertSettings,
) -> JSON:
    """The stored request set to `revoked`, with a note saying why (who revoked it and when)."""
    request = without_store_meta(stored)
    request["status"] = "revoked"
    request["statusReason"] = {"text": status_reason}
    notes = [n for n in request.get("note", ()) if isinstance(n, Mapping)]
    notes.append(
        {"authorString": settings.device_display, "time": fhir_datetime(now), "text": note}
    )
    request["note"] = notes
    return request


def flag_with_period_end(stored: Mapping[str, Any], *, now: datetime) -> JSON | None:
    """The stored Flag with period.end set, or None when it already has one (nothing to write)."""
    flag = without_store_meta(stored)
    period = dict(flag.get("period") or {})
    if period.get("end"):
        return None
    period["end"] = fhir_datetime(now)
    flag["period"] = period
    return flag
