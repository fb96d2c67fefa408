"""The evaluation clock of the command-line tools: which time data is judged at, and where that
time came from, so `evaluate` and `replay` never judge dated test data at "now" in silence.

Test files carry their clock the way the scenario fixtures do: a data file `NAME.json` (or
`.ndjson`, `.json.gz`, `.ndjson.gz`) next to its expectation `NAME.expect.json`, whose `asOf`
is the time the data was written for. Pure file reading, no network.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from service.fhir.index import parse_instant
from service.files import DATA_SUFFIXES
from service.replay.expectations import EXPECT_SUFFIX

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
AS_OF_HELP = "an ISO datetime (2026-06-01T12:00:00Z) or a date (2026-06-01 = 12:00 UTC that day)"


def parse_as_of(value: str) -> datetime | None:
    """An `--as-of` value as an aware UTC datetime; None when unreadable.

    A date alone means 12:00 UTC that day: the middle of the UTC day, so the day is the same
    in every time zone from UTC-12 to UTC+11 and a "12 days ago" in the data stays 12 days.
    """
    text = value.strip()
    if _DATE_ONLY.match(text):
        try:
            day = datetime.strptime(text, "%Y-%m-%d")
        except ValueError:
            return None
        return day.replace(hour=12, tzinfo=UTC)
    parsed = parse_instant(text)
    return None if parsed is None else parsed.replace(tzinfo=UTC)


def as_of_text(moment: datetime) -> str:
    """The ISO form sent as `?asOf=` and shown to people: 2026-06-01T12:00:00Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def expectation_for(data_file: Path) -> Path | None:
    """The `NAME.expect.json` beside a data file `NAME.json` (etc.), when there is one."""
    name = data_file.name
    for suffix in sorted(DATA_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            candidate = data_file.with_name(name[: -len(suffix)] + EXPECT_SUFFIX)
            return candidate if candidate.is_file() else None
    return None


def file_as_of(data_file: Path) -> str | None:
    """The `asOf` a data file carries (its expectation's), as written; None when it has none
    or the expectation cannot be read (the replay's own checks report that)."""
    expectation = expectation_for(data_file)
    if expectation is None:
        return None
    try:
        data = orjson.loads(expectation.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    value = data.get("asOf") if isinstance(data, dict) else None
    return value if isinstance(value, str) and parse_as_of(value) is not None else None


@dataclass(frozen=True, slots=True)
class FileClocks:
    """The asOf values a set of data files carry."""

    by_file: Mapping[Path, str]  # only the files that carry one
    total: int  # data files looked at

    @property
    def values(self) -> frozenset[str]:
        """Distinct instants, as written by the first file that named each."""
        seen: dict[datetime, str] = {}
        for value in self.by_file.values():
            moment = parse_as_of(value)
            if moment is not None:
                seen.setdefault(moment, value)
        return frozenset(seen.values())

    @property
    def single(self) -> str | None:
        values = self.values
        return next(iter(values)) if len(values) == 1 else None


def file_clocks(files: Iterable[Path]) -> FileClocks:
    listed = list(files)
    found = {f: v for f in listed if (v := file_as_of(f)) is not None}
    return FileClocks(found, len(listed))


def same_instant(a: str, b: str) -> bool:
    """Two asOf spellings of one instant (2026-06-01 and 2026-06-01T12:00:00Z are one)."""
    x, y = parse_as_of(a), parse_as_of(b)
    return x is not None and x == y
