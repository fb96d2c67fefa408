"""The alert's overall priority: the highest finding priority, then the combination rule.

Combination (clinical-rules.md §5): findings from two or more of the groups {back pain,
calcium, ALP} raise the priority one step (routine → urgent → asap), never to `stat` by
combination alone. The groups are data (`combination.groups`):
back pain = new-back-pain; calcium = hypercalcemia, rising-calcium; ALP = rising-alp.
suspected-mscc belongs to no group: it is `stat` on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ruleset import RuleConfig
from workers.rules.model import PRIORITY_ORDER, FindingCode, Priority, priority_rank
from workers.rules.text import sentence


def _names(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


class Judged(Protocol):
    """A finding as the engine makes it or as an alert episode records it."""

    @property
    def code(self) -> FindingCode: ...

    @property
    def priority(self) -> Priority: ...


def overall_priority(findings: Sequence[Judged], config: RuleConfig) -> tuple[Priority | None, str]:
    """The priority and, in words, how it was reached. The alert life cycle uses it too, when
    it recomputes an episode after a retraction, so the rule lives in one place."""
    if not findings:
        return None, "No finding."
    top = max(priority_rank(f.priority) for f in findings)
    top_codes = sorted(f.code for f in findings if priority_rank(f.priority) == top)
    reason = f"Highest finding priority: {PRIORITY_ORDER[top]} ({_names(top_codes)})."
    codes = {f.code for f in findings}
    groups = [name for name, members in config.combination_groups if codes & members]
    if len(groups) < config.combination_min_groups:
        return PRIORITY_ORDER[top], reason
    ceiling = priority_rank(config.combination_ceiling)
    raised = min(top + 1, ceiling)
    together = sentence(f"{_names(groups)} findings are present together")
    if raised > top:
        final = PRIORITY_ORDER[raised]
        reason += f" {together}: raised one step to {final} (combination rule)."
        return final, reason
    reason += (
        f" {together}, but the combination rule raises a priority at most to"
        f" {config.combination_ceiling}: it stays {PRIORITY_ORDER[top]}."
    )
    return PRIORITY_ORDER[top], reason
