"""The five findings of clinical-rules.md §5, one function each.

Each rule sees all history (consumed records included: they make back pain "not new", feed
baselines and corrections) but fires only from unconsumed triggering records, and lists only
those as evidence: a closed episode's evidence never raises an alert again.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from operator import attrgetter

from contract import (
    ALBUMIN,
    ALP,
    BACK_PAIN,
    CALCIUM_CORRECTED,
    CALCIUM_IONIZED,
    CALCIUM_TOTAL,
    NEURO_DEFICIT,
)
from ruleset import RuleConfig
from workers.rules.dates import iso_day, iso_ordinal
from workers.rules.labs import (
    Baseline,
    Judged,
    above,
    at_least,
    baseline,
    latest,
    merged,
    upper_limit,
)
from workers.rules.model import Evidence, Finding, Priority, priority_rank
from workers.rules.records import Event, Measurement, PatientRecords
from workers.rules.text import (
    date_list,
    event_evidence,
    judged_phrase,
    measurement_evidence,
    number,
    quantity,
    sentence,
    sorted_evidence,
)

_day = attrgetter("day")


@dataclass(frozen=True, slots=True)
class Context:
    """One evaluation: the records as of T, the rule set, and what is already consumed."""

    at_day: int  # UTC calendar day of T
    config: RuleConfig
    records: PatientRecords
    consumed: frozenset[str]
    known_metastasis: bool
    first_cancer_day: int | None  # earliest dated breast-cancer Condition, if any
    notes: list[str] = field(default_factory=list)  # evaluation log of the rules themselves

    def recent(self, day: int) -> bool:
        return self.at_day - day <= self.config.recent_days

    def can_trigger(self, ref: str) -> bool:
        return ref not in self.consumed

    def history(self, *value_sets: str) -> tuple[Measurement, ...]:
        """All values of the analytes' streams, merged oldest first."""
        streams = [self.records.stream(s) for s in self.config.streams_of(*value_sets)]
        return merged(streams)

    def latest_fresh(self, stream: str) -> Judged | None:
        """The stream's latest value, when it is recent and may trigger; else None."""
        judged = latest(self.records.stream(stream), self.history(ALBUMIN), self.config)
        if judged is None:
            return None
        m = judged.measurement
        if not self.recent(m.day) or not self.can_trigger(m.ref):
            return None
        return judged

    def limit(self, m: Measurement) -> float | None:
        """The upper limit a value is judged against; a problem with its own is logged."""
        limit, note = upper_limit(m, self.config)
        if note is not None:
            self.notes.append(note)
        return limit

    def baseline(self, judged: Judged) -> Baseline | None:
        m = judged.measurement
        return baseline(self.records.stream(m.stream), m, self.history(ALBUMIN), self.config)


def _clean(value: float) -> float:
    """Finding values without binary noise (12.664000000000001 → 12.664); judged unrounded."""
    return round(value, 6)


def _baseline_phrase(base: Baseline | None, unit: str, cfg: RuleConfig, threshold: str = "") -> str:
    """ "baseline 100 U/L (median of 3 values, 2025-12-01 to 2026-09-01; threshold 1.5 ×)" """
    if base is None:
        window = cfg.baseline_window
        return f"no baseline (no value {window.min_days}–{window.max_days} days before)"
    first = iso_day(base.values[0].measurement.date)
    last = iso_day(base.values[-1].measurement.date)
    count = len(base.values)
    values = f"1 value on {first}" if count == 1 else f"median of {count} values, {first} to {last}"
    detail = f"{values}; threshold {threshold}" if threshold else values
    return f"baseline {quantity(base.value, unit)} ({detail})"


def _supporting(judged: Judged, base: Baseline | None, config: RuleConfig) -> tuple[Evidence, ...]:
    """Records used but not triggering: the albumin of a correction, the baseline values."""
    items: list[Evidence] = []
    if judged.albumin is not None:
        items.append(measurement_evidence(judged.albumin, config))
    if base is not None:
        for j in base.values:
            items.append(measurement_evidence(j.measurement, config))
            if j.albumin is not None:
                items.append(measurement_evidence(j.albumin, config))
    return sorted_evidence(items)


# -- new-back-pain ----------------------------------------------------------------------------


def new_back_pain(ctx: Context) -> Finding | None:
    """A recent back-pain record, on/after the first breast-cancer date, with no other back-pain
    record 31–365 days before it."""
    cfg = ctx.config
    pains = ctx.records.events_in(BACK_PAIN)
    window = cfg.new_back_pain_lookback
    triggers: list[Event] = []
    for event in pains:
        if not ctx.recent(event.day) or not ctx.can_trigger(event.ref):
            continue
        if ctx.first_cancer_day is not None and event.day < ctx.first_cancer_day:
            continue
        lo = bisect_left(pains, event.day - window.max_days, key=_day)
        hi = bisect_right(pains, event.day - window.min_days, key=_day)
        if lo < hi:
            continue  # back pain already recorded 31–365 days before: not new
        triggers.append(event)
    if not triggers:
        return None
    evidence = sorted_evidence(event_evidence(e, BACK_PAIN, cfg) for e in triggers)
    dates = date_list(iso_day(e.clinical_date) for e in evidence)
    since = ""
    if ctx.first_cancer_day is not None:
        since = f"; breast cancer on record since {iso_ordinal(ctx.first_cancer_day)}"
    reason = (
        f"New back pain recorded on {dates}: no back pain was recorded"
        f" {window.min_days}–{window.max_days} days before it{since}."
    )
    return Finding(
        code="new-back-pain",
        priority=cfg.priority_new_back_pain,
        date=max(e.clinical_date for e in evidence),
        evidence=evidence,
        reason=reason,
    )


# -- suspected-mscc ---------------------------------------------------------------------------


def suspected_mscc(ctx: Context) -> Finding | None:
    """A neurological-deficit record in the last 14 days (with or without back pain)."""
    cfg = ctx.config
    triggers = [
        e
        for e in ctx.records.events_in(NEURO_DEFICIT)
        if ctx.at_day - e.day <= cfg.mscc_days and ctx.can_trigger(e.ref)
    ]
    if not triggers:
        return None
    evidence = sorted_evidence(event_evidence(e, NEURO_DEFICIT, cfg) for e in triggers)
    dates = date_list(iso_day(e.clinical_date) for e in evidence)
    return Finding(
        code="suspected-mscc",
        priority=cfg.priority_suspected_mscc,
        date=max(e.clinical_date for e in evidence),
        evidence=evidence,
        reason=(
            f"{sentence(cfg.title('NEURO_DEFICIT'))} recorded on {dates}, within the last"
            f" {cfg.mscc_days} days: possible metastatic spinal cord compression."
        ),
    )


# -- hypercalcemia ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Hyper:
    judged: Judged
    limit: float
    grade: int
    priority: Priority


def _grade(value: float, bands: tuple[float, ...]) -> int:
    """CTCAE v5: above the limit is grade 1; above each further band one grade more."""
    return 1 + sum(1 for band in bands if above(value, band))


def hypercalcemia(ctx: Context) -> Finding | None:
    """The latest calcium (serum total/corrected; ionized on its own limits) is recent and above
    its upper limit; graded by CTCAE v5. Known bone metastasis: only grade 2 or more."""
    cfg = ctx.config
    families = (
        (cfg.streams_of(CALCIUM_TOTAL, CALCIUM_CORRECTED), cfg.calcium_grade_bands),
        (cfg.streams_of(CALCIUM_IONIZED), cfg.ionized_grade_bands),
    )
    hits: list[_Hyper] = []
    for streams, bands in families:
        for stream in streams:
            judged = ctx.latest_fresh(stream)
            if judged is None:
                continue
            limit = ctx.limit(judged.measurement)
            if limit is None or not above(judged.value, limit):
                continue
            grade = min(_grade(judged.value, bands), len(cfg.hypercalcemia_priority_by_grade))
            if ctx.known_metastasis and grade < cfg.known_metastasis_min_hypercalcemia_grade:
                continue
            hits.append(
                _Hyper(judged, limit, grade, cfg.hypercalcemia_priority_by_grade[grade - 1])
            )
    if not hits:
        return None
    main = max(
        hits,
        key=lambda h: (
            priority_rank(h.priority),
            h.grade,
            h.judged.measurement.date,
            h.judged.measurement.ref,
        ),
    )
    m = main.judged.measurement
    reason = " ".join(
        f"{sentence(judged_phrase(h.judged, cfg))}: above the upper limit"
        f" {quantity(h.limit, h.judged.measurement.unit)}, CTCAE grade {h.grade}."
        for h in sorted(hits, key=lambda h: (h.judged.measurement.date, h.judged.measurement.ref))
    )
    supporting = sorted_evidence(e for h in hits for e in _supporting(h.judged, None, cfg))
    return Finding(
        code="hypercalcemia",
        priority=main.priority,
        date=max(h.judged.measurement.date for h in hits),
        evidence=sorted_evidence(measurement_evidence(h.judged.measurement, cfg) for h in hits),
        reason=reason,
        supporting=supporting,
        grade=main.grade,
        value=_clean(main.judged.value),
        unit=m.unit,
        upper_limit=_clean(main.limit),
        comparator=m.comparator,
    )


# -- rising-calcium ---------------------------------------------------------------------------


def rising_calcium(ctx: Context) -> Finding | None:
    """The latest recent serum calcium is within its limit but ≥ 10.0 mg/dL and ≥ 10 % above
    its baseline."""
    cfg = ctx.config
    for stream in cfg.streams_of(CALCIUM_TOTAL, CALCIUM_CORRECTED):
        judged = ctx.latest_fresh(stream)
        if judged is None:
            continue
        m = judged.measurement
        limit = ctx.limit(m)
        if limit is None or above(judged.value, limit):
            continue
        if not at_least(judged.value, cfg.rising_calcium_floor):
            continue
        base = ctx.baseline(judged)
        if base is None or not at_least(
            judged.value, base.value * (1.0 + cfg.rising_calcium_fraction)
        ):
            continue
        rise = (
            f"{number(round((judged.value / base.value - 1.0) * 100.0, 1))}%"
            if base.value > 0
            else "far"
        )
        threshold = f"{number(cfg.rising_calcium_fraction * 100)}%"
        reason = (
            f"{sentence(judged_phrase(judged, cfg))}: within the upper limit"
            f" {quantity(limit, m.unit)} but at least {quantity(cfg.rising_calcium_floor, m.unit)}"
            f" and {rise} above the {_baseline_phrase(base, m.unit, cfg, threshold)}."
        )
        return Finding(
            code="rising-calcium",
            priority=cfg.priority_rising_calcium,
            date=m.date,
            evidence=(measurement_evidence(m, cfg),),
            reason=reason,
            supporting=_supporting(judged, base, cfg),
            value=_clean(judged.value),
            unit=m.unit,
            baseline=_clean(base.value),
            upper_limit=_clean(limit),
            comparator=m.comparator,
        )
    return None


# -- rising-alp -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Alp:
    judged: Judged
    limit: float
    base: Baseline | None
    priority: Priority
    why: str


def _times(value: float, base: float) -> str:
    """ "2.2 ×" (a zero baseline, however unlikely, must not crash an evaluation)."""
    return f"{number(value / base)} ×" if base > 0 else "far above"


def _alp_hit(ctx: Context, judged: Judged) -> _Alp | None:
    cfg = ctx.config
    m = judged.measurement
    limit = ctx.limit(m)
    if limit is None:
        return None
    value = judged.value
    base = ctx.baseline(judged)
    if above(value, limit):
        if base is not None and not at_least(
            value, cfg.alp_above_limit_baseline_ratio * base.value
        ):
            return None
        why = f"above the upper limit {quantity(limit, m.unit)}"
        if base is not None:
            threshold = f"{number(cfg.alp_above_limit_baseline_ratio)} ×"
            why += (
                f" and {_times(value, base.value)} the"
                f" {_baseline_phrase(base, m.unit, cfg, threshold)}"
            )
        else:
            why += f", {_baseline_phrase(None, m.unit, cfg)}"
    else:
        if base is None or not at_least(value, cfg.alp_within_limit_baseline_ratio * base.value):
            return None
        threshold = f"{number(cfg.alp_within_limit_baseline_ratio)} ×"
        why = (
            f"within the upper limit {quantity(limit, m.unit)} but"
            f" {_times(value, base.value)} the {_baseline_phrase(base, m.unit, cfg, threshold)}"
        )
    priority = cfg.priority_rising_alp
    if above(value, cfg.alp_urgent_limit_multiple * limit):
        priority = cfg.priority_rising_alp_urgent
        why += f"; more than {number(cfg.alp_urgent_limit_multiple)} × the upper limit"
    return _Alp(judged, limit, base, priority, why)


def rising_alp(ctx: Context) -> Finding | None:
    """The latest recent ALP is above its limit (and ≥ 1.25 × baseline when there is one), or
    within it but ≥ 1.5 × baseline; urgent above 2.5 × the limit. Bone-specific ALP is its own
    history (its values are not comparable with total ALP)."""
    cfg = ctx.config
    hits: list[_Alp] = []
    for stream in cfg.streams_of(ALP):
        judged = ctx.latest_fresh(stream)
        if judged is not None:
            hit = _alp_hit(ctx, judged)
            if hit is not None:
                hits.append(hit)
    if not hits:
        return None
    main = max(
        hits,
        key=lambda h: (
            priority_rank(h.priority),
            h.judged.measurement.date,
            h.judged.measurement.ref,
        ),
    )
    m = main.judged.measurement
    ordered = sorted(hits, key=lambda h: (h.judged.measurement.date, h.judged.measurement.ref))
    return Finding(
        code="rising-alp",
        priority=main.priority,
        date=max(h.judged.measurement.date for h in hits),
        evidence=sorted_evidence(measurement_evidence(h.judged.measurement, cfg) for h in hits),
        reason=" ".join(f"{sentence(judged_phrase(h.judged, cfg))}: {h.why}." for h in ordered),
        supporting=sorted_evidence(e for h in hits for e in _supporting(h.judged, h.base, cfg)),
        value=_clean(main.judged.value),
        unit=m.unit,
        baseline=None if main.base is None else _clean(main.base.value),
        upper_limit=_clean(main.limit),
        comparator=m.comparator,
    )
