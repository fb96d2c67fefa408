"""CDS Hooks 2.0 cards from open alerts: pure (no I/O), so the card a clinician sees in the EHR
is a function of the stored alert and the records it cites, and can be tested without a server.

One card per open alert (a CommunicationRequest of category `alert` that still asks someone to
act, with the Flag of its episode when there is one):

- `summary` (≤ 140 characters, the spec's limit): priority word and the findings;
- `indicator` from the alert priority: `stat`/`asap` → `critical` (the spec's "act now"),
  `urgent` → `warning` (act soon, today), `routine` → `info` (review in due course);
- `detail` (GitHub-flavoured markdown): findings with the rule engine's explanation, red
  flags, each cited record with its value and date, and a reminder that the service supports
  and never diagnoses;
- `source`: label with the rule-set version the alert was raised with, the service URL, and
  the alert code as `topic`;
- `links`: the alert's row on the worklist (`/worklist#flag-<id>`, the row's HTML id);
- `overrideReasons`: the dismiss reasons of `contract.DISMISS_REASONS`; the feedback endpoint
  applies one as a dismiss of the alert;
- `uuid`: derived from the request's id and version, so the same alert version always gets the
  same card id and feedback on a card for an older version no longer matches it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import contract as c
from service.web import extract as x

JSON = dict[str, Any]

SUMMARY_MAX = 140
INDICATORS: Mapping[str, str] = {
    "stat": "critical",
    "asap": "critical",
    "urgent": "warning",
    "routine": "info",
}
DISMISS_REASON_SYSTEM = f"{c.CODE_SYSTEM_BASE}/{c.DISMISS_REASON_CODE_SYSTEM_NAME}"
# uuid5 namespace of card ids (fixed: ids must be stable across processes and restarts).
CARD_NAMESPACE = uuid.UUID("2f6d4b1e-8c1a-5b7e-9d3f-6a0e4c2b1f90")


@dataclass(frozen=True, slots=True)
class OpenAlert:
    """An alert that still asks someone to act, with what its card shows."""

    request: Mapping[str, Any]  # the open CommunicationRequest (stored JSON, with meta)
    flag: Mapping[str, Any] | None  # its episode's Flag, when stored and readable
    # Every cited record ("Type/id"), from the EHR's prefetch or this server's store; None
    # when neither has it.
    evidence: Mapping[str, Mapping[str, Any] | None] = field(default_factory=dict)


def override_reasons() -> list[JSON]:
    return [
        {"system": DISMISS_REASON_SYSTEM, "code": code, "display": display}
        for code, display in c.DISMISS_REASONS.items()
    ]


def request_version(request: Mapping[str, Any]) -> str:
    meta = request.get("meta")
    version = meta.get("versionId") if isinstance(meta, Mapping) else None
    return str(version or "1")


def card_uuid(request: Mapping[str, Any]) -> str:
    """The card id of this version of this alert request."""
    name = f"CommunicationRequest/{request.get('id')}/_history/{request_version(request)}"
    return str(uuid.uuid5(CARD_NAMESPACE, name))


def cited_references(alert_request: Mapping[str, Any], flag: Mapping[str, Any] | None) -> list[str]:
    """The records the alert cites (Flag evidence first, then the request's reasons), once."""
    cited = [e.get("valueReference") for e in x.extensions(dict(flag or {}), c.FLAG_DETAIL_URL)]
    cited += list(alert_request.get("reasonReference") or ())
    refs: list[str] = []
    for item in cited:
        ref = x.reference(item)
        if ref and ref not in refs:
            refs.append(ref)
    return refs


def _priority(alert: OpenAlert) -> str:
    priority = str(alert.request.get("priority") or "")
    if not priority and alert.flag is not None:
        for ext in x.extensions(dict(alert.flag), c.ALERT_PRIORITY_URL):
            priority = str(ext.get("valueCode") or "")
    return priority if priority in INDICATORS else "routine"


def _ruleset_version(alert: OpenAlert) -> str | None:
    for resource in (alert.request, alert.flag or {}):
        for ext in x.extensions(dict(resource), c.RULESET_VERSION_URL):
            if isinstance(ext.get("valueString"), str):
                return str(ext["valueString"])
    return None


def _coded(resource: Mapping[str, Any] | None, url: str) -> list[str]:
    return [
        x.coding_display(e.get("valueCodeableConcept"))
        or x.concept_text(e.get("valueCodeableConcept"))
        for e in x.extensions(dict(resource or {}), url)
    ]


def _findings(alert: OpenAlert) -> list[str]:
    found = [f for f in _coded(alert.flag, c.FINDING_EXTENSION_URL) if f]
    if not found:
        found = [x.concept_text(rc) for rc in alert.request.get("reasonCode") or ()]
    return [f for f in found if f]


def _finding_lines(alert: OpenAlert) -> list[str]:
    """Each finding with the rule engine's explanation of it (the Flag's finding text)."""
    lines = []
    for e in x.extensions(dict(alert.flag or {}), c.FINDING_EXTENSION_URL):
        concept = e.get("valueCodeableConcept")
        name, text = x.coding_display(concept), x.concept_text(concept)
        if name and text and text != name:
            lines.append(f"- **{_md(name)}**: {_md(text)}")
        elif name or text:
            lines.append(f"- **{_md(name or text)}**")
    return lines or [f"- **{_md(f)}**" for f in _findings(alert)]


def truncate(text: str, limit: int = SUMMARY_MAX) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def summary(alert: OpenAlert) -> str:
    word = x.PRIORITY_WORD.get(_priority(alert), "Routine")
    findings = _findings(alert)
    what = ", ".join(f.lower() if i else f for i, f in enumerate(findings))
    text = f"{word}: possible bone metastasis"
    return truncate(f"{text}: {what}" if what else text)


def _md(text: str) -> str:
    """Markdown-inert text: record words must not turn into links or emphasis."""
    out = []
    for ch in text:
        if ch in "\\`*_{}[]()<>#+!|~":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out).replace("\n", " ")


def _evidence_line(ref: str, resource: Mapping[str, Any] | None) -> str:
    if resource is None:
        return f"- {_md(ref)}: not available"
    words = x.concept_words(resource.get("code")) or x.concept_code(resource.get("code")) or ref
    when = x.show_when(x.clinical_date(dict(resource)))
    if resource.get("resourceType") == "Observation":
        value = x.observation_value(dict(resource))
    else:
        value = x.concept_code(resource.get("clinicalStatus")) or None
    parts = [_md(words)]
    if value:
        parts.append(_md(value))
    if when:
        parts.append(_md(when))
    return f"- {' — '.join(parts)} ({_md(ref)})"


def detail(alert: OpenAlert) -> str:
    lines = ["**Findings**", ""]
    lines += _finding_lines(alert) or ["- (none recorded)"]
    red_flags = [r for r in _coded(alert.flag, c.RED_FLAG_EXTENSION_URL) if r]
    if red_flags:
        lines += ["", "**Red flags**", ""] + [f"- {_md(r)}" for r in red_flags]
    refs = cited_references(alert.request, alert.flag)
    if refs:
        lines += ["", "**Evidence**", ""]
        lines += [_evidence_line(ref, alert.evidence.get(ref)) for ref in refs]
    lines += [
        "",
        "This alert asks the oncology team to review; it is not a diagnosis.",
    ]
    return "\n".join(lines)


def worklist_anchor(alert: OpenAlert) -> str:
    """The HTML id of the alert's worklist row (service.web.models.Alert.key)."""
    if alert.flag is not None and alert.flag.get("id"):
        return f"flag-{alert.flag['id']}"
    return f"request-{alert.request.get('id')}"


def card(alert: OpenAlert, *, service_root: str) -> JSON:
    version = _ruleset_version(alert)
    label = f"fhir-alerts bone-metastasis rules {version}" if version else "fhir-alerts"
    return {
        "uuid": card_uuid(alert.request),
        "summary": summary(alert),
        "indicator": INDICATORS[_priority(alert)],
        "detail": detail(alert),
        "source": {
            "label": truncate(label),
            "url": f"{service_root}/fhir",
            "topic": {
                "system": f"{c.CODE_SYSTEM_BASE}/{c.ALERT_CODE_SYSTEM_NAME}",
                "code": c.FLAG_CODE,
                "display": c.FLAG_DISPLAY,
            },
        },
        "overrideReasons": override_reasons(),
        "links": [
            {
                "label": "Open this alert on the oncology worklist",
                "url": f"{service_root}/worklist#{worklist_anchor(alert)}",
                "type": "absolute",
            }
        ],
    }


def cards(alerts: Iterable[OpenAlert], *, service_root: str) -> list[JSON]:
    """Cards, most pressing first (stat, asap, urgent, routine; then oldest first)."""
    ordered: Sequence[OpenAlert] = sorted(
        alerts,
        key=lambda a: (x.priority_rank(_priority(a)), str(a.request.get("authoredOn") or "")),
    )
    return [card(a, service_root=service_root) for a in ordered]
