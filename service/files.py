"""Reading FHIR files from disk: `.json` (resource or Bundle), `.ndjson` and `.json.gz`,
from files or folders (sorted, so runs are repeatable). Expectation files (`*.expect.json`)
are not data and are skipped."""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

DATA_SUFFIXES = (".json", ".ndjson", ".json.gz", ".ndjson.gz")


def is_data_file(path: Path) -> bool:
    name = path.name
    return name.endswith(DATA_SUFFIXES) and not name.endswith(".expect.json")


def data_files(paths: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and is_data_file(f)))
        elif p.exists():
            out.append(p)
        else:
            raise FileNotFoundError(str(p))
    return out


def _read(path: Path) -> bytes:
    raw = path.read_bytes()
    return gzip.decompress(raw) if path.name.endswith(".gz") else raw


def load_file(path: Path) -> list[dict[str, Any]]:
    """The JSON objects in a file: one for .json, one per line for .ndjson."""
    raw = _read(path)
    if ".ndjson" in path.name:
        return [orjson.loads(line) for line in raw.splitlines() if line.strip()]
    data = orjson.loads(raw)
    return data if isinstance(data, list) else [data]


def iter_resources(paths: Iterable[Path]) -> Iterator[tuple[Path, dict[str, Any]]]:
    for f in data_files(paths):
        for obj in load_file(f):
            if isinstance(obj, dict):
                yield f, obj
