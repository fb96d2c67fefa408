"""Raw FHIR R4 JSON (as stored) → the few small records the rules read.

Speed matters here: a patient may have thousands of Observations and only a handful matter, so
this is plain dict access with early exits (status, then code), never model validation. Records
are grouped by what the rules ask for (events by value set, values by analyte stream), each
group sorted by (clinical date, reference) so nothing downstream depends on input order.

Judgement calls (clinical-rules.md §2):
- one version per "Type/id" (the highest meta.versionId; a total order breaks ties);
- Observations count when final/amended/corrected/preliminary, Conditions unless their
  verificationStatus is refuted/entered-in-error, read by code with or without `system`
  (workers/rules/status.py, the one reading retraction uses too);
- records dated after T are ignored: evaluation is "as of" T;
- a record without a usable clinical date is skipped with a note, except a breast-cancer or
  bone-metastasis Condition, which still proves the history (its date stays unknown);
- a PAIN_SEVERITY score only counts with a back context (bodySite, or a back coding in code);
  a score above 0 whose code also carries a BACK_PAIN coding records back pain as well;
- numeric results older than T − lookback_days are dropped early: no rule can reach them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any, NamedTuple, TypeGuard

from contract import (
    BACK_BODY_SITE,
    BACK_PAIN,
    BACK_PAIN_HIGH_SPINE,
    BREAST_CANCER,
    KNOWN_BONE_METASTASIS,
    NEURO_DEFICIT,
    PAIN_SEVERITY,
    WEIGHT_LOSS,
)
from ruleset import Analyte, RuleConfig
from ruleset.units import safe_unit_text
from ruleset.valuesets import EMPTY
from workers.rules.dates import first_date, parse_fhir_datetime
from workers.rules.status import OBSERVATION_COUNTS, verification_excluded

COMPARATORS = frozenset({"<", "<=", ">=", ">", "ad"})

HISTORY_SETS = frozenset({BREAST_CANCER, KNOWN_BONE_METASTASIS})  # Conditions only
SYMPTOM_SETS = frozenset({BACK_PAIN, BACK_PAIN_HIGH_SPINE, NEURO_DEFICIT, WEIGHT_LOSS})
EVENT_SETS = HISTORY_SETS | SYMPTOM_SETS
BACK_CONTEXT_SETS = frozenset({BACK_BODY_SITE, BACK_PAIN})

_by_date_ref = attrgetter("date", "ref")


class Event(NamedTuple):
    """A coded record: a Condition, or a symptom Observation that is present.

    A NamedTuple, not a frozen dataclass: as immutable, and built several times faster (the
    frozen dataclass __init__ alone cost a microsecond per record).
    """

    ref: str  # "Condition/x"
    date: datetime | None  # None only for undated history Conditions
    day: int  # UTC calendar day ordinal (0 when undated)
    sets: frozenset[str]


class Measurement(NamedTuple):
    """A numeric result in its analyte's canonical unit, with what was actually recorded.

    A NamedTuple for the same reason as Event: thousands are built per evaluation.
    """

    ref: str
    date: datetime
    day: int
    kind: str  # value set of its code: "CALCIUM_TOTAL", "ALP", ...
    stream: str  # history it belongs to: latest value and baseline are taken per stream
    value: float  # in `unit`
    unit: str  # the analyte's canonical unit
    raw_value: float
    raw_unit: str  # as written ("" when none)
    comparator: str | None
    ranges: Any  # the Observation's referenceRange as stored; read only if the value is judged
    factor: float  # recorded unit → `unit` (a referenceRange.high without a unit uses it)


@dataclass(frozen=True, slots=True)
class PatientRecords:
    """What one patient's stored resources say, as of T."""

    events: Mapping[str, tuple[Event, ...]]  # value set → dated events, oldest first
    undated: Mapping[str, tuple[Event, ...]]  # history Conditions with no usable date
    streams: Mapping[str, tuple[Measurement, ...]]  # stream → values, oldest first
    notes: tuple[str, ...]

    def events_in(self, value_set: str) -> tuple[Event, ...]:
        return self.events.get(value_set, ())

    def stream(self, name: str) -> tuple[Measurement, ...]:
        return self.streams.get(name, ())


def _version_key(resource: Mapping[str, Any]) -> tuple[int, int, str, str]:
    """Orders versions of one resource: numeric versionIds numerically, then lastUpdated."""
    meta = resource.get("meta")
    version: object = None
    updated: object = None
    if _is_map(meta):
        version, updated = meta.get("versionId"), meta.get("lastUpdated")
    updated_text = updated if isinstance(updated, str) else ""
    if isinstance(version, str) and version.isdigit():
        return (1, int(version), "", updated_text)
    if isinstance(version, str):
        return (2, 0, version, updated_text)
    return (0, 0, "", updated_text)


def _canonical(resource: Mapping[str, Any]) -> str:
    return json.dumps(resource, sort_keys=True, default=str, ensure_ascii=False)


def _newer(candidate: Mapping[str, Any], current: Mapping[str, Any]) -> bool:
    """True when `candidate` should replace `current` (same reference); a total order."""
    a, b = _version_key(candidate), _version_key(current)
    if a != b:
        return a > b
    return _canonical(candidate) > _canonical(current)


def dedupe(
    resources: Iterable[Mapping[str, Any]], notes: list[str]
) -> dict[str, Mapping[str, Any]]:
    """One resource per "Type/id" among Conditions and Observations; other types ignored."""
    best: dict[str, Mapping[str, Any]] = {}
    for resource in resources:
        try:
            rtype = resource["resourceType"]
        except (KeyError, TypeError, IndexError):
            continue  # not a resource
        if rtype != "Observation" and rtype != "Condition":
            continue
        rid = resource.get("id")
        if type(rid) is not str or not rid:
            notes.append(f"{rtype} without an id: skipped")
            continue
        ref = rtype + "/" + rid
        current = best.get(ref)
        if current is None or (current is not resource and _newer(resource, current)):
            best[ref] = resource
    return best


def _is_map(value: object) -> TypeGuard[Mapping[str, Any]]:
    """isinstance(value, Mapping), with the common cases (a dict, nothing) ten times faster."""
    return type(value) is dict or (value is not None and isinstance(value, Mapping))


def _number(value: object) -> float | None:
    """A finite JSON number (not a bool), else None."""
    if type(value) is int or type(value) is float:
        number = float(value)
        return number if math.isfinite(number) else None
    return None


class _Collector:
    """Turns one patient's deduplicated resources into records; collects the notes."""

    def __init__(self, config: RuleConfig, at: datetime):
        self.config = config
        self.units = config.units
        self.at = at
        self.oldest_day = at.toordinal() - config.lookback_days
        self.lookup = config.index.lookup
        self.code_memo: dict[tuple[object, object], frozenset[str]] = {}
        self.analyte_memo: dict[frozenset[str], Analyte | None] = {}
        self.unit_memo: dict[tuple[str, str, object, object], tuple[float | None, str]] = {}
        self.events: dict[str, list[Event]] = {}
        self.undated: dict[str, list[Event]] = {}
        self.streams: dict[str, list[Measurement]] = {}
        self.notes: list[str] = []

    # -- codes -------------------------------------------------------------------------------

    def sets_of(self, concept: Any) -> frozenset[str]:
        """Value sets any coding of a CodeableConcept belongs to."""
        try:
            codings = concept["coding"]
        except (KeyError, TypeError, IndexError):
            return EMPTY  # no concept, or no coding in it
        if not codings:
            return EMPTY
        found = EMPTY
        memo = self.code_memo
        for coding in codings:
            try:
                key = (coding["system"], coding["code"])
            except KeyError:
                key = (coding.get("system"), coding.get("code"))
            hit = memo.get(key)
            if hit is None:
                system, code = key
                if isinstance(system, str) and isinstance(code, str):
                    hit = self.lookup(system, code)
                else:
                    hit = EMPTY
                memo[key] = hit
            if hit:
                found = found | hit if found else hit
        return found

    def analyte_for(self, sets: frozenset[str]) -> Analyte | None:
        try:
            return self.analyte_memo[sets]
        except KeyError:
            pass
        found = next((a for a in self.config.analytes if a.value_set in sets), None)
        self.analyte_memo[sets] = found
        return found

    # -- resources ---------------------------------------------------------------------------

    def add_event(self, ref: str, date: datetime | None, sets: frozenset[str]) -> None:
        if date is None:
            event = Event(ref, None, 0, sets)
            for name in sets:
                self.undated.setdefault(name, []).append(event)
            return
        event = Event(ref, date, date.toordinal(), sets)
        for name in sets:
            self.events.setdefault(name, []).append(event)

    def condition(self, ref: str, resource: Mapping[str, Any]) -> None:
        verification = resource.get("verificationStatus")
        if verification and verification_excluded(verification):
            return
        sets = self.sets_of(resource.get("code")) & EVENT_SETS
        if not sets:
            return
        period = resource.get("onsetPeriod")
        date = first_date(
            resource.get("onsetDateTime"),
            period.get("start") if _is_map(period) else None,
            resource.get("recordedDate"),
        )
        if date is None:
            history = sets & HISTORY_SETS
            if history:
                self.notes.append(f"{ref}: no usable clinical date; used for history only")
                self.add_event(ref, None, history)
            else:
                self.notes.append(f"{ref}: no usable clinical date; skipped")
            return
        if date <= self.at:
            self.add_event(ref, date, sets)

    def observation_date(self, resource: Mapping[str, Any]) -> datetime | None:
        """effective[x] (dateTime, Period.start, instant), else issued."""
        effective = resource.get("effectiveDateTime")
        if type(effective) is str:
            date = parse_fhir_datetime(effective)
            if date is not None:
                return date
        period = resource.get("effectivePeriod")
        return first_date(
            period.get("start") if _is_map(period) else None,
            resource.get("effectiveInstant"),
            resource.get("issued"),
        )

    def observation(self, ref: str, resource: Mapping[str, Any]) -> None:
        if resource.get("status") not in OBSERVATION_COUNTS:
            return
        code_sets = self.sets_of(resource.get("code"))
        if code_sets:
            analyte = self.analyte_for(code_sets)
            if analyte is not None:
                self.measurement(ref, resource, analyte, code_sets)
                return
        answer = resource.get("valueCodeableConcept")
        if answer:
            sets = (code_sets | self.sets_of(answer)) & SYMPTOM_SETS
        elif code_sets:
            sets = code_sets & SYMPTOM_SETS
        else:
            return  # the common case: an Observation no rule is about
        if not sets or resource.get("valueBoolean") is False:
            return
        date = self.observation_date(resource)
        if date is None:
            self.notes.append(f"{ref}: no usable clinical date; skipped")
        elif date <= self.at:
            self.add_event(ref, date, sets)

    def back_context(self, resource: Mapping[str, Any], code_sets: frozenset[str]) -> bool:
        """A pain score is about the back when its bodySite or another coding says so."""
        return bool(
            code_sets & BACK_CONTEXT_SETS
            or self.sets_of(resource.get("bodySite")) & BACK_CONTEXT_SETS
        )

    def measurement(
        self, ref: str, resource: Mapping[str, Any], analyte: Analyte, code_sets: frozenset[str]
    ) -> None:
        """A numeric result. The hot path of an evaluation: keep it to dict lookups."""
        pain = analyte.value_set == PAIN_SEVERITY
        if pain and not self.back_context(resource, code_sets):
            return
        date = self.observation_date(resource)
        if date is None:
            self.notes.append(f"{ref}: no usable clinical date; skipped")
            return
        if date > self.at:
            return
        day = date.toordinal()
        if day < self.oldest_day:
            return  # older than any rule looks: cannot change the outcome
        quantity = resource.get("valueQuantity")
        comparator: str | None = None
        if type(quantity) is dict or _is_map(quantity):
            raw: object = quantity.get("value")
            unit_code: object = quantity.get("code")
            unit_text: object = quantity.get("unit")
            if "comparator" in quantity:
                comp = quantity["comparator"]
                comparator = comp if comp in COMPARATORS else None
        else:
            raw = resource.get("valueInteger")
            unit_code = unit_text = None
        number = _number(raw)
        if number is None:
            self.notes.append(f"{ref}: no numeric value; skipped")
            return
        factor, written = self.unit(analyte, unit_code, unit_text)
        if factor is None:
            if not (analyte.unit_optional and not written):
                shown = safe_unit_text(written) if written else "(none)"
                self.notes.append(
                    f"{ref}: unit {shown} cannot be converted to {analyte.unit}; value not used"
                )
                return
            factor = 1.0
        value = number * factor
        if analyte.value_range is not None and not (
            analyte.value_range[0] <= value <= analyte.value_range[1]
        ):
            self.notes.append(f"{ref}: value outside the {analyte.unit} scale; not used")
            return
        stream = analyte.stream
        if analyte.stream_by_code:
            for coding in resource["code"]["coding"]:
                other = analyte.stream_for(coding.get("system"), coding.get("code"))
                if other is not None:
                    stream = other
                    break
        measurement = Measurement(
            ref,
            date,
            day,
            analyte.value_set,
            stream,
            value,
            analyte.unit,
            number,
            written,
            comparator,
            resource.get("referenceRange"),
            factor,
        )
        bucket = self.streams.get(stream)
        if bucket is None:
            self.streams[stream] = [measurement]
        else:
            bucket.append(measurement)
        if pain and value > 0:
            back_pain = code_sets & SYMPTOM_SETS
            if back_pain:
                # A back-pain score above 0 also records back pain itself (0 means none).
                self.add_event(ref, date, back_pain)

    def unit(self, analyte: Analyte, code: object, text: object) -> tuple[float | None, str]:
        """(factor to the analyte's unit or None, unit as written); memoised per evaluation
        because a patient's results repeat a handful of unit spellings thousands of times."""
        key = (analyte.quantity, analyte.unit, code, text)
        try:
            return self.unit_memo[key]
        except KeyError:
            pass
        found = (
            self.units.factor(analyte.quantity, code, text, analyte.unit),
            self.units.describe(code, text),
        )
        self.unit_memo[key] = found
        return found

    def records(self) -> PatientRecords:
        return PatientRecords(
            events={k: tuple(sorted(v, key=_by_date_ref)) for k, v in self.events.items()},
            undated={k: tuple(sorted(v, key=attrgetter("ref"))) for k, v in self.undated.items()},
            streams={k: tuple(sorted(v, key=_by_date_ref)) for k, v in self.streams.items()},
            notes=tuple(sorted(set(self.notes))),
        )


def reference_high(m: Measurement, config: RuleConfig) -> tuple[float | None, str | None]:
    """The first referenceRange.high usable in the analyte's unit, and a note for each one
    that is not. A high written without a unit is in the value's own unit.

    Read lazily, for the few values actually judged against a limit: converting the range of
    every baseline value would cost time and log problems that change nothing.
    """
    if not m.ranges:
        return None, None
    analyte = config.analyte(m.kind)
    units = config.units
    note: str | None = None
    try:
        for entry in m.ranges:
            high = entry.get("high") if _is_map(entry) else None
            if not _is_map(high):
                continue
            number = _number(high.get("value"))
            if number is None:
                continue
            code, text = high.get("code"), high.get("unit")
            written = units.describe(code, text)
            factor = (
                units.factor(analyte.quantity, code, text, analyte.unit) if written else m.factor
            )
            if factor is None:
                note = note or (
                    f"{m.ref}: referenceRange high unit {safe_unit_text(written)} cannot be"
                    f" converted to {analyte.unit}; default upper limit used"
                )
                continue
            return number * factor, None
    except (AttributeError, TypeError):
        return None, f"{m.ref}: malformed referenceRange; default upper limit used"
    return None, note


def collect(
    resources: Iterable[Mapping[str, Any]], at: datetime, config: RuleConfig
) -> PatientRecords:
    """The records of one patient as of `at` (aware UTC), with the evaluation log."""
    collector = _Collector(config, at)
    for ref, resource in dedupe(resources, collector.notes).items():
        try:
            if ref[0] == "O":
                collector.observation(ref, resource)
            else:
                collector.condition(ref, resource)
        except (AttributeError, TypeError, KeyError, ValueError, IndexError):
            collector.notes.append(f"{ref}: malformed resource; skipped")
    return collector.records()
