"""Files on disk: reading FHIR files (`.json` resource or Bundle, `.ndjson`, `.json.gz`, from
files or folders, sorted so runs are repeatable; `*.expect.json` expectation files are not data
and are skipped), and keeping the service's own files private.

The data dir holds the signing secret and, on the embedded default, every patient's data (the
SQLite file and its -wal/-shm): it is 0700 and each file in it 0600, whatever the umask, so
another local account can read neither.
"""

from __future__ import annotations

import gzip
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

DATA_SUFFIXES = (".json", ".ndjson", ".json.gz", ".ndjson.gz")
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
# SQLite's companions of a database file (WAL mode, rollback journal).
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")

log = logging.getLogger(__name__)


def _tighten(path: Path, mode: int) -> None:
    try:
        os.chmod(path, mode)
    except PermissionError:  # e.g. a mounted volume owned by another account
        log.warning("cannot set mode %o on %s (not its owner)", mode, path)


def make_private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) and make it 0700; an existing one is tightened."""
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    _tighten(path, PRIVATE_DIR_MODE)
    return path


def make_private_file(path: Path) -> Path:
    """Create `path` empty if missing, 0600 from its first byte (no window in which the umask's
    mode applies); an existing one is tightened to 0600."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        pass
    else:
        os.close(fd)
    _tighten(path, PRIVATE_FILE_MODE)
    return path


def make_private_sqlite(path: Path) -> Path:
    """The SQLite file 0600 before SQLite opens it: SQLite creates -wal and -shm with the mode
    of the database file, so they are private too. Companions left by an older version are
    tightened."""
    make_private_file(path)
    for suffix in SQLITE_COMPANIONS:
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            _tighten(companion, PRIVATE_FILE_MODE)
    return path


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
