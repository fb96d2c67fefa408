"""Plain-language pieces for nurses: numbers, dates, and one line per evidence record.

Only values, units, dates and value-set titles are written: never the free text of the record
(code displays, notes), which is not ours to repeat and may not be what the rules matched.
"""

from __future__ import annotations

from collections.abc import Iterable

from ruleset import RuleConfig
from workers.rules.dates import iso_day
from workers.rules.labs import Judged
from workers.rules.model import Evidence
from workers.rules.records import Event, Measurement


def number(value: float) -> str:
    """11.8, 147, 10.501: at most three decimals, no trailing zeros."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def sentence(text: str) -> str:
    """First letter upper case, the rest untouched ("ALP", "mg/dL" keep their case)."""
    return text[:1].upper() + text[1:]


def quantity(value: float, unit: str) -> str:
    return f"{number(value)} {unit}".rstrip()


def recorded(m: Measurement) -> str:
    """The value as the laboratory wrote it, then in the judged unit when that differs."""
    written = f"{m.comparator or ''}{quantity(m.raw_value, m.raw_unit)}"
    if m.raw_value != m.value:
        return f"{written} ({quantity(m.value, m.unit)})"
    return written


def event_evidence(event: Event, kind: str, config: RuleConfig) -> Evidence:
    assert event.date is not None  # only dated events are ever evidence
    return Evidence(
        reference=event.ref,
        clinical_date=event.date,
        kind=kind,
        display=f"{config.title(kind)} recorded on {iso_day(event.date)}",
    )


def measurement_evidence(m: Measurement, config: RuleConfig) -> Evidence:
    return Evidence(
        reference=m.ref,
        clinical_date=m.date,
        kind=m.kind,
        display=f"{config.title(m.kind)} {recorded(m)} on {iso_day(m.date)}",
        value=m.raw_value,
        unit=m.raw_unit or None,
        comparator=m.comparator,
    )


def sorted_evidence(items: Iterable[Evidence]) -> tuple[Evidence, ...]:
    """Oldest first, one entry per reference."""
    unique = {e.reference: e for e in items}
    return tuple(sorted(unique.values(), key=lambda e: (e.clinical_date, e.reference)))


def judged_phrase(judged: Judged, config: RuleConfig) -> str:
    """ "total calcium 2.95 mmol/L (11.82 mg/dL) on 2026-11-01, albumin-corrected to 12.1
    mg/dL with albumin 3.2 g/dL on 2026-10-31" """
    m = judged.measurement
    text = f"{config.title(m.kind)} {recorded(m)} on {iso_day(m.date)}"
    if judged.albumin is not None:
        alb = judged.albumin
        text += (
            f", albumin-corrected to {quantity(judged.value, m.unit)} with albumin"
            f" {recorded(alb)} on {iso_day(alb.date)}"
        )
    if m.comparator:
        text += f" (reported with '{m.comparator}'; the number is used as is)"
    return text


def date_list(days: Iterable[str]) -> str:
    """ "2026-10-20 and 2026-10-30", "a, b and c" """
    items = sorted(set(days))
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
