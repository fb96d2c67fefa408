"""Red-flag qualifiers (clinical-rules.md §5): listed on an alert, never changing its priority.

They qualify findings, so they are computed only when there is at least one finding. Like
findings, they are raised only by unconsumed records: a closed episode's records stay history.
"""

from __future__ import annotations

from collections.abc import Sequence

from contract import BACK_PAIN_HIGH_SPINE, GGT, PAIN_SEVERITY, WEIGHT_LOSS
from workers.rules.dates import iso_day
from workers.rules.findings import Context
from workers.rules.labs import above, at_least, latest
from workers.rules.model import Finding, RedFlag, RedFlagCode
from workers.rules.text import (
    date_list,
    event_evidence,
    measurement_evidence,
    number,
    quantity,
    recorded,
    sentence,
    sorted_evidence,
)


def _recent_events(ctx: Context, value_set: str, code: RedFlagCode) -> RedFlag | None:
    events = [
        e for e in ctx.records.events_in(value_set) if ctx.recent(e.day) and ctx.can_trigger(e.ref)
    ]
    if not events:
        return None
    evidence = sorted_evidence(event_evidence(e, value_set, ctx.config) for e in events)
    dates = date_list(iso_day(e.clinical_date) for e in evidence)
    text = f"{sentence(ctx.config.title(value_set))} recorded on {dates}."
    return RedFlag(code=code, text=text, evidence=evidence)


def high_spine_back_pain(ctx: Context) -> RedFlag | None:
    """Recent pain high in the spine (thoracic or cervical)."""
    return _recent_events(ctx, BACK_PAIN_HIGH_SPINE, "high-spine-back-pain")


def weight_loss(ctx: Context) -> RedFlag | None:
    """Recent weight loss."""
    return _recent_events(ctx, WEIGHT_LOSS, "weight-loss")


def progressive_pain(ctx: Context) -> RedFlag | None:
    """The latest recent back-pain score is ≥ 2 points above the lowest score of the 30 days
    before it: the pain is getting worse."""
    cfg = ctx.config
    scores = ctx.history(PAIN_SEVERITY)
    newest = latest(scores, (), cfg)
    if newest is None:
        return None
    last = newest.measurement
    if not ctx.recent(last.day) or not ctx.can_trigger(last.ref):
        return None
    earlier = [m for m in scores if m.date < last.date and last.day - m.day <= cfg.pain_rise_days]
    if not earlier:
        return None
    lowest = min(earlier, key=lambda m: (m.value, -m.date.timestamp(), m.ref))
    if not at_least(last.value - lowest.value, cfg.pain_rise_points):
        return None
    evidence = [measurement_evidence(last, cfg)]
    if ctx.can_trigger(lowest.ref):
        evidence.append(measurement_evidence(lowest, cfg))
    text = (
        f"Progressive pain: back pain score rose from {number(lowest.value)} on"
        f" {iso_day(lowest.date)} to {number(last.value)} on {iso_day(last.date)}"
        f" (a rise of at least {number(cfg.pain_rise_points)} points within"
        f" {cfg.pain_rise_days} days)."
    )
    return RedFlag(code="progressive-pain", text=text, evidence=sorted_evidence(evidence))


def ggt_raised(ctx: Context, findings: Sequence[Finding]) -> RedFlag | None:
    """GGT above its upper limit together with an ALP finding: the rise may be hepatic (still an
    alert: liver metastases matter too)."""
    if not any(f.code == "rising-alp" for f in findings):
        return None
    cfg = ctx.config
    for stream in cfg.streams_of(GGT):
        judged = ctx.latest_fresh(stream)
        if judged is None:
            continue
        m = judged.measurement
        limit = ctx.limit(m)
        if limit is None:
            ctx.notes.append(
                f"{m.ref}: no upper limit for GGT (no referenceRange.high); not judged"
            )
            continue
        if above(m.value, limit):
            text = (
                f"GGT {recorded(m)} on {iso_day(m.date)} is above its upper limit"
                f" {quantity(limit, m.unit)}: the ALP rise may be hepatic (liver metastases"
                " matter too)."
            )
            return RedFlag(code="ggt-raised", text=text, evidence=(measurement_evidence(m, cfg),))
    return None


def red_flags(ctx: Context, findings: Sequence[Finding]) -> tuple[RedFlag, ...]:
    """All red flags, sorted by code (problems met go to ctx.notes)."""
    if not findings:
        return ()
    candidates = (
        high_spine_back_pain(ctx),
        weight_loss(ctx),
        progressive_pain(ctx),
        ggt_raised(ctx, findings),
    )
    return tuple(sorted((f for f in candidates if f is not None), key=lambda f: f.code))
