"""What `replay` sends: files turned into the Bundles to POST, and what their answers mean.

- transaction and batch Bundles go as they are (a transaction stays all-or-nothing);
- other Bundles (collection, searchset...) become one batch: each resource is PUT `Type/id`
  when it has an id (so a second replay changes nothing) and POSTed otherwise, keeping its
  fullUrl so references between entries still resolve;
- single resources and ndjson lines are gathered into batches of `batch_size`.

Files are listed by `service.files` (sorted; `*.expect.json` skipped) and read lazily here, one
ndjson line at a time, so a bad line is reported on its own and the rest still goes. Loose
resources are sent before the next Bundle, so the order of the data is kept.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

JSON = dict[str, Any]


@dataclass(slots=True)
class Upload:
    """One POST /fhir: a Bundle and where each of its entries came from."""

    label: str
    bundle: JSON
    origins: list[str] = field(default_factory=list)  # one per entry, for messages

    @property
    def size(self) -> int:
        return len(self.bundle.get("entry") or [])


@dataclass(frozen=True, slots=True)
class FileDone:
    path: Path


@dataclass(frozen=True, slots=True)
class ReadProblem:
    """Something in a file that cannot be sent at all (unreadable JSON, not a resource)."""

    where: str
    message: str


Event = Upload | FileDone | ReadProblem


def batch_entry(resource: Mapping[str, Any], full_url: str | None = None) -> JSON:
    rtype = resource["resourceType"]
    rid = resource.get("id")
    if isinstance(rid, str) and rid:
        request = {"method": "PUT", "url": f"{rtype}/{rid}"}
    else:
        request = {"method": "POST", "url": rtype}
    entry: JSON = {}
    if full_url:
        entry["fullUrl"] = full_url
    entry["resource"] = dict(resource)
    entry["request"] = request
    return entry


def _batch(entries: list[JSON]) -> JSON:
    return {"resourceType": "Bundle", "type": "batch", "entry": entries}


def _is_resource(obj: Any) -> bool:
    return isinstance(obj, Mapping) and isinstance(obj.get("resourceType"), str)


def as_batch(bundle: Mapping[str, Any], where: str) -> tuple[Upload, list[ReadProblem]]:
    """A collection (or any non-transaction Bundle) as a batch of its resources."""
    entries: list[JSON] = []
    origins: list[str] = []
    problems: list[ReadProblem] = []
    for i, e in enumerate(bundle.get("entry") or []):
        res = e.get("resource") if isinstance(e, Mapping) else None
        if not _is_resource(res):
            problems.append(ReadProblem(f"{where} entry[{i}]", "no resource with a resourceType"))
            continue
        assert isinstance(res, Mapping) and isinstance(e, Mapping)
        full = e.get("fullUrl")
        entries.append(batch_entry(res, full if isinstance(full, str) else None))
        origins.append(f"{where} entry[{i}]")
    return Upload(where, _batch(entries), origins), problems


def _objects(path: Path) -> Iterator[tuple[str, Any]]:
    """(label, JSON object) for each object in a file; an unreadable file or ndjson line comes
    as a ReadProblem of its own, so one bad line does not lose the rest of the file."""
    try:
        raw = path.read_bytes()
        if path.name.endswith(".gz"):
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        yield path.name, ReadProblem(path.name, f"cannot be read ({type(exc).__name__})")
        return
    if ".ndjson" in path.name:
        for i, line in enumerate(raw.splitlines()):
            if not line.strip():
                continue
            where = f"{path.name} line {i + 1}"
            try:
                yield where, orjson.loads(line)
            except orjson.JSONDecodeError:
                yield where, ReadProblem(where, "not valid JSON")
        return
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        yield path.name, ReadProblem(path.name, f"not valid JSON (at byte {exc.pos})")
        return
    items = data if isinstance(data, list) else [data]
    for i, obj in enumerate(items):
        yield (f"{path.name} [{i}]" if isinstance(data, list) else path.name), obj


def plan(files: Iterable[Path], batch_size: int = 100) -> Iterator[Event]:
    """The uploads for `files` (as listed by `service.files.data_files`, so the caller can size
    its progress bar first), in order, with a `FileDone` after each file."""
    pending: list[JSON] = []
    pending_origins: list[str] = []

    def flush() -> Iterator[Upload]:
        if pending:
            first, last = pending_origins[0], pending_origins[-1]
            label = first if len(pending) == 1 else f"{first} … {last}"
            yield Upload(label, _batch(list(pending)), list(pending_origins))
            pending.clear()
            pending_origins.clear()

    for path in files:
        for where, obj in _objects(path):
            if isinstance(obj, ReadProblem):
                yield obj
                continue
            if not _is_resource(obj):
                yield ReadProblem(where, "not a FHIR resource (no resourceType)")
                continue
            if obj["resourceType"] == "Bundle":
                yield from flush()
                if obj.get("type") in ("transaction", "batch"):
                    yield Upload(where, obj, [f"{where} entry[{k}]" for k in range(_n(obj))])
                else:
                    upload, problems = as_batch(obj, where)
                    yield from problems
                    if upload.size:
                        yield upload
                continue
            pending.append(batch_entry(obj))
            pending_origins.append(where)
            if len(pending) >= batch_size:
                yield from flush()
        yield FileDone(path)  # loose resources may still wait for a fuller batch
    yield from flush()


def _n(bundle: Mapping[str, Any]) -> int:
    entries = bundle.get("entry")
    return len(entries) if isinstance(entries, list) else 0


# --- reading the answers ---------------------------------------------------------------------


def outcome_text(outcome: Any) -> str:
    """The diagnostics of an OperationOutcome, one issue per `; `."""
    if not isinstance(outcome, Mapping):
        return ""
    parts = []
    for issue in outcome.get("issue") or []:
        if isinstance(issue, Mapping):
            text = issue.get("diagnostics") or issue.get("code") or ""
            parts.append(str(text))
    return "; ".join(parts)


def _ok(status: Any) -> bool:
    return isinstance(status, str) and status[:1] == "2"


def entry_problems(upload: Upload, response: Mapping[str, Any]) -> list[ReadProblem]:
    """Entries of a batch answered with an error (a transaction either fails whole or not)."""
    out = []
    for i, entry in enumerate(response.get("entry") or []):
        resp = entry.get("response") if isinstance(entry, Mapping) else None
        if not isinstance(resp, Mapping) or _ok(resp.get("status")):
            continue
        where = upload.origins[i] if i < len(upload.origins) else f"{upload.label} entry[{i}]"
        out.append(ReadProblem(where, f"{resp.get('status')}: {outcome_text(resp.get('outcome'))}"))
    return out


def _type_id(ref: str) -> str | None:
    """ "Type/id" from a relative or absolute reference or location (with or without _history)."""
    parts = ref.split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) >= 2 and parts[-2] and parts[-1]:
        return f"{parts[-2]}/{parts[-1]}"
    return None


def touched_patients(sent: Mapping[str, Any], response: Mapping[str, Any]) -> set[str]:
    """The patients ("Patient/<id>") whose data the server stored from this Bundle: stored
    Patients, and the subject/patient of every other stored resource (urn:uuid references
    resolved through the locations the server answered)."""
    sent_entries = sent.get("entry") or []
    answers = response.get("entry") or []
    stored: list[tuple[Mapping[str, Any], str]] = []
    mapping: dict[str, str] = {}
    for entry, answer in zip(sent_entries, answers, strict=False):
        if not isinstance(entry, Mapping) or not isinstance(answer, Mapping):
            continue
        resp = answer.get("response")
        if not isinstance(resp, Mapping) or not _ok(resp.get("status")):
            continue
        location = resp.get("location")
        if not isinstance(location, str):
            continue
        where = _type_id(location)
        res = entry.get("resource")
        if where is None or not isinstance(res, Mapping):
            continue
        full = entry.get("fullUrl")
        if isinstance(full, str):
            mapping[full] = where
        stored.append((res, where))
    out: set[str] = set()
    for res, where in stored:
        if where.startswith("Patient/"):
            out.add(where)
            continue
        for key in ("subject", "patient"):
            ref = res.get(key)
            value = ref.get("reference") if isinstance(ref, Mapping) else None
            if not isinstance(value, str):
                continue
            target = mapping.get(value) or _type_id(value)
            if target and target.startswith("Patient/"):
                out.add(target)
    return out


def dumps(bundle: Mapping[str, Any]) -> bytes:
    return orjson.dumps(bundle)
