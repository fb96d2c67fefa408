"""FHIR dates as UTC datetimes, and the calendar-day arithmetic the windows use.

Why calendar days: the rules speak in whole days ("recent" = 30 days, "31–365 days before"),
and most clinical dates arrive as plain dates ("2026-10-02", midnight). Counting UTC calendar
days makes "30 days before T" include every record of that day whatever its time, and leaves no
gap between "30 days" and "31 days". Datetimes are still used to order records within a day.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache


@lru_cache(maxsize=8192)
def parse_fhir_datetime(value: str) -> datetime | None:
    """A FHIR date/dateTime/instant as an aware UTC datetime; None when unusable.

    Partial dates ("2024", "2024-05") stand for the start of their period; a datetime without
    a timezone is taken as UTC. Cached because a patient's records repeat the same timestamps
    (one encounter, many results); datetimes are immutable so sharing them is safe.
    """
    n = len(value)
    try:
        if n == 4 and value.isdigit():
            return datetime(int(value), 1, 1, tzinfo=UTC)
        if n == 7 and value[4] == "-" and value[:4].isdigit() and value[5:].isdigit():
            return datetime(int(value[:4]), int(value[5:]), 1, tzinfo=UTC)
        if n < 10 or value[4] != "-" or value[7] != "-":
            return None
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    if parsed.tzinfo is UTC:
        return parsed
    return parsed.astimezone(UTC)


def first_date(*values: object) -> datetime | None:
    """The first of the candidate values that parses: FHIR's "x else y" date fallbacks."""
    for value in values:
        if isinstance(value, str):
            parsed = parse_fhir_datetime(value)
            if parsed is not None:
                return parsed
    return None


def day_number(moment: datetime) -> int:
    """The UTC calendar day of an aware datetime, as an ordinal (days compare by subtraction)."""
    return moment.astimezone(UTC).toordinal()


def as_utc(moment: datetime) -> datetime:
    """The evaluation time in UTC; a naive datetime is read as UTC, like FHIR data."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def iso_ordinal(day: int) -> str:
    """A calendar-day ordinal as an ISO date."""
    return date.fromordinal(day).isoformat()


def iso_day(moment: datetime) -> str:
    """The date nurses read on an alert, e.g. "2026-11-01" (UTC)."""
    return moment.astimezone(UTC).date().isoformat()
