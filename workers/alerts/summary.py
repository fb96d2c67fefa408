"""The plain-language text a CommunicationRequest carries to the oncology team.

A clinician reads this on a worklist or in an EHR inbox, often without opening the FHIR
resources, so it states everything that made the alert: values with units and dates, limits and
baseline, CTCAE grade, red flags, the recommended action (rule-set data) and the rule-set
version. It supports review; it never claims a diagnosis.
"""

from __future__ import annotations

from collections.abc import Sequence

from contract import FINDING_DISPLAY
from ruleset import RuleConfig
from workers.alerts.state import EpisodeFinding, EpisodeState, EvidenceRecord
from workers.rules.model import Finding, FindingCode, Priority, priority_rank

_BASELINE_FINDINGS: frozenset[FindingCode] = frozenset({"rising-calcium", "rising-alp"})


def _number(value: float) -> str:
    """Up to two decimals without trailing zeros: lab values read as they were written."""
    return f"{round(value, 2):g}"


def finding_facts(finding: Finding) -> str:
    """Values, units, limits, baseline, grade and supporting records of a finding, in words."""
    parts: list[str] = []
    if finding.value is not None:
        unit = f" {finding.unit}" if finding.unit else ""
        limits: list[str] = []
        if finding.upper_limit is not None:
            limits.append(f"upper limit {_number(finding.upper_limit)}{unit}")
        if finding.baseline is not None:
            ratio = (
                f", {finding.value / finding.baseline:.2f} × baseline"
                if finding.baseline > 0
                else ""
            )
            limits.append(f"baseline {_number(finding.baseline)}{unit}{ratio}")
        elif finding.code in _BASELINE_FINDINGS:
            limits.append("no baseline in the previous year")
        text = f"Value {finding.comparator or ''}{_number(finding.value)}{unit}"
        if limits:
            text += f" ({'; '.join(limits)})"
        if finding.comparator:
            text += f"; reported with the comparator '{finding.comparator}'"
        parts.append(text)
    if finding.grade is not None:
        parts.append(f"CTCAE v5 grade {finding.grade}")
    if finding.supporting:
        parts.append(
            "supporting records: "
            + "; ".join(f"{e.display} [{e.reference}]" for e in finding.supporting)
        )
    return ("; ".join(parts) + ".") if parts else ""


def recommended_actions(
    findings: Sequence[EpisodeFinding], overall: Priority, config: RuleConfig
) -> tuple[str, ...]:
    """One action per finding, most pressing first; a lead line when a combination raised it.
    The words are the rule set's (`recommended_actions`), versioned with its thresholds."""
    ordered = sorted(findings, key=lambda f: (-priority_rank(f.priority), f.code))
    actions: list[str] = []
    highest = max((priority_rank(f.priority) for f in findings), default=-1)
    if priority_rank(overall) > highest:
        actions.append(config.combination_action.format(priority=overall))
    for finding in ordered:
        action = config.recommended_action(finding.code, finding.priority)
        if action not in actions:
            actions.append(action)
    return tuple(actions)


def _sentence(text: str) -> str:
    """Text to splice into a list: without its closing full stop."""
    return text.strip().rstrip(".")


def _cite(evidence: EvidenceRecord) -> str:
    """An evidence record in words, its date (unless its display has it) and its reference."""
    date = evidence.date.date().isoformat()
    shown = _sentence(evidence.display)
    if date not in shown:
        shown += f" ({date})"
    return f"{shown} [{evidence.reference}]"


def communication_text(state: EpisodeState, *, why: Sequence[str], config: RuleConfig) -> str:
    """The payload of a CommunicationRequest: a self-contained account of the episode now."""
    lines = [
        f"Possible bone metastasis: oncology review requested for {state.patient} "
        f"(priority {state.priority}).",
        *why,
        "Findings:",
    ]
    for finding in sorted(state.findings, key=lambda f: (-priority_rank(f.priority), f.code)):
        line = (
            f"- {FINDING_DISPLAY[finding.code]} ({finding.priority}; "
            f"{finding.date.date().isoformat()}): {finding.reason.strip()}"
        )
        if finding.facts:
            line += f" {finding.facts}"
        lines.append(line)
        lines.append("  Evidence: " + "; ".join(_cite(e) for e in finding.evidence) + ".")
    if state.red_flags:
        lines.append("Red flags: " + "; ".join(_sentence(r.text) for r in state.red_flags) + ".")
    else:
        lines.append("Red flags: none found.")
    if state.priority_history:
        lines.append(f"Why this priority: {state.priority_history[-1].reason}")
    lines.append("Recommended action:")
    lines.extend(f"- {a}" for a in recommended_actions(state.findings, state.priority, config))
    lines.append(
        f"Rule set {state.ruleset_version}. Raised by automated surveillance to support "
        "clinical review; this is not a diagnosis."
    )
    return "\n".join(lines)
