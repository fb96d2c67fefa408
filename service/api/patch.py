"""JSON Patch (RFC 6902) for FHIR PATCH: enough for a nurse's status change
(`[{"op": "replace", "path": "/status", "value": "completed"}]`) and the usual edits."""

from __future__ import annotations

import copy
from typing import Any

from service.errors import FHIRError, bad_request


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise bad_request(f"JSON Patch path must start with '/': {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str]) -> tuple[Any, str]:
    cur = doc
    for p in parts[:-1]:
        if isinstance(cur, list):
            cur = cur[int(p)]
        elif isinstance(cur, dict):
            cur = cur[p]
        else:
            raise KeyError(p)
    return cur, parts[-1]


def apply_patch(doc: dict[str, Any], ops: Any) -> dict[str, Any]:
    if not isinstance(ops, list):
        raise bad_request("A JSON Patch body must be an array of operations")
    out = copy.deepcopy(doc)
    for i, op in enumerate(ops):
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise bad_request(f"Patch operation {i} needs 'op' and 'path'")
        try:
            parent, key = _parent(out, _pointer(op["path"]))
            kind = op["op"]
            if kind in ("add", "replace"):
                if "value" not in op:
                    raise bad_request(f"Patch operation {i} needs a 'value'")
                if isinstance(parent, list):
                    idx = len(parent) if key == "-" else int(key)
                    if kind == "add":
                        parent.insert(idx, op["value"])
                    else:
                        parent[idx] = op["value"]
                else:
                    if kind == "replace" and key not in parent:
                        raise KeyError(key)
                    parent[key] = op["value"]
            elif kind == "remove":
                if isinstance(parent, list):
                    del parent[int(key)]
                else:
                    del parent[key]
            elif kind == "test":
                current = parent[int(key)] if isinstance(parent, list) else parent[key]
                if current != op.get("value"):
                    raise FHIRError.of(
                        422, "processing", f"Patch test operation {i} failed", (op["path"],)
                    )
            else:
                raise bad_request(f"Patch operation '{kind}' is not supported")
        except (KeyError, IndexError, ValueError, TypeError):
            raise FHIRError.of(
                422, "processing", f"Patch operation {i}: path not found", (str(op["path"]),)
            ) from None
    return out
