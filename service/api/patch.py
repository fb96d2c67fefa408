"""FHIR PATCH bodies: JSON Patch (RFC 6902), enough for a nurse's status change
(`[{"op": "replace", "path": "/status", "value": "completed"}]`) and the usual edits, and JSON
Merge Patch (RFC 7396, `{"status": "completed"}`, what fhirpy's `resource.patch()` sends).

Pure functions on plain JSON; `interactions.patch` stores the result like any update. A client's
pointer or index that cannot apply is a 422 naming the operation, never an exception.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from service.errors import FHIRError, bad_request

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
# fhirpy (and other clients) send a merge patch as plain application/json.
PATCH_TYPES = frozenset({JSON_PATCH, MERGE_PATCH, "application/json"})

# Nesting a merge patch may have: far deeper than any FHIR resource, far below the stack.
_MAX_MERGE_DEPTH = 64
_INDEX_RE = re.compile(r"^(?:0|[1-9][0-9]{0,8})$")  # RFC 6901: no sign, no leading zeros


def patch_document(content_type: str, doc: dict[str, Any], body: Any) -> dict[str, Any]:
    """The patched resource. `application/json` is a merge patch when the body is an object
    and a JSON Patch when it is an array (both clients exist)."""
    if content_type == JSON_PATCH or (
        content_type == "application/json" and isinstance(body, list)
    ):
        return apply_patch(doc, body)
    return apply_merge_patch(doc, body)


def apply_merge_patch(doc: dict[str, Any], patch: Any) -> dict[str, Any]:
    if not isinstance(patch, dict):
        raise bad_request("A merge patch body must be a JSON object")
    merged = _merge(doc, patch, 0)
    assert isinstance(merged, dict)
    return merged


def _merge(target: Any, patch: Any, depth: int) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if depth > _MAX_MERGE_DEPTH:
        raise bad_request(f"A merge patch may nest at most {_MAX_MERGE_DEPTH} objects deep")
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge(out.get(key), value, depth + 1)
    return out


def _pointer(path: Any, i: int) -> list[str]:
    if not isinstance(path, str) or not path.startswith("/"):
        raise bad_request(f"Patch operation {i}: a path must be a string starting with '/'")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


class _NotFound(Exception):
    """The pointer does not reach an element (422 for the operation)."""


def _index(key: str, size: int, *, insert: bool) -> int:
    """An array index of a pointer: digits only (RFC 6901), within the array (`-` = the end
    for add). Out of range or oversized is "path not found", never an overflow."""
    if insert and key == "-":
        return size
    if not _INDEX_RE.match(key):
        raise _NotFound
    idx = int(key)
    if idx > size or (idx == size and not insert):
        raise _NotFound
    return idx


def _child(cur: Any, key: str) -> Any:
    if isinstance(cur, list):
        return cur[_index(key, len(cur), insert=False)]
    if isinstance(cur, dict) and key in cur:
        return cur[key]
    raise _NotFound


def _parent(doc: Any, parts: list[str]) -> tuple[Any, str]:
    cur = doc
    for p in parts[:-1]:
        cur = _child(cur, p)
    if not isinstance(cur, (list, dict)):
        raise _NotFound
    return cur, parts[-1]


def _get(doc: Any, parts: list[str]) -> Any:
    parent, key = _parent(doc, parts)
    return _child(parent, key)


def _remove(doc: Any, parts: list[str]) -> Any:
    parent, key = _parent(doc, parts)
    if isinstance(parent, list):
        return parent.pop(_index(key, len(parent), insert=False))
    if key not in parent:
        raise _NotFound
    return parent.pop(key)


def _add(doc: Any, parts: list[str], value: Any, *, replace: bool) -> None:
    parent, key = _parent(doc, parts)
    if isinstance(parent, list):
        idx = _index(key, len(parent), insert=not replace)
        if replace:
            parent[idx] = value
        else:
            parent.insert(idx, value)
    else:
        if replace and key not in parent:
            raise _NotFound
        parent[key] = value


def apply_patch(doc: dict[str, Any], ops: Any) -> dict[str, Any]:
    if not isinstance(ops, list):
        raise bad_request("A JSON Patch body must be an array of operations")
    out = copy.deepcopy(doc)
    for i, op in enumerate(ops):
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise bad_request(f"Patch operation {i} needs 'op' and 'path'")
        kind = op["op"]
        parts = _pointer(op["path"], i)
        if kind in ("add", "replace", "test") and "value" not in op:
            raise bad_request(f"Patch operation {i} needs a 'value'")
        if kind in ("move", "copy") and "from" not in op:
            raise bad_request(f"Patch operation {i} needs a 'from'")
        try:
            if kind in ("add", "replace"):
                _add(out, parts, copy.deepcopy(op["value"]), replace=kind == "replace")
            elif kind == "remove":
                _remove(out, parts)
            elif kind == "move":
                value = _remove(out, _pointer(op["from"], i))
                _add(out, parts, value, replace=False)
            elif kind == "copy":
                value = copy.deepcopy(_get(out, _pointer(op["from"], i)))
                _add(out, parts, value, replace=False)
            elif kind == "test":
                if _get(out, parts) != op["value"]:
                    raise FHIRError.of(
                        422, "processing", f"Patch test operation {i} failed", (str(op["path"]),)
                    )
            else:
                raise bad_request(f"Patch operation '{kind}' is not supported")
        except _NotFound:
            raise FHIRError.of(
                422, "processing", f"Patch operation {i}: path not found", (str(op["path"]),)
            ) from None
    return out
