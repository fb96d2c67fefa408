"""FHIR JSON rules that the `fhir.resources` models do not enforce.

The pydantic models are lenient where FHIR JSON is strict: they coerce `"yes"` to a boolean and
`5` to a dateTime, and accept `null`, empty arrays and objects, ids of any length, control
characters (PostgreSQL cannot store NUL), and offsets that push year 1 or 9999 out of the
calendar (the indexer then overflows). They also recurse once per nesting level, so a deeply
nested body exhausts the stack. This walk runs first, with the models' field types, and names
each problem by element path and expected type, never by value: the client learns what to fix
and no patient data reaches an error body or a log. Pure: no I/O.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

from pydantic import BaseModel

from service.errors import Issue

# JSON nesting allowed inside one resource. Real resources stay far below it (a Bundle entry
# with a contained resource and nested extensions is ~15); the models recurse per level.
MAX_DEPTH = 64
# Issues reported per resource: enough to fix a resource, not a wall of text.
MAX_ISSUES = 20

_ID_RE = re.compile(r"[A-Za-z0-9\-.]{1,64}")
# FHIR strings: no code points below U+0020 except tab, line feed and carriage return.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_TIME_RE = re.compile(
    r"^(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?"
    r"(?:\.\d+)?(?P<tz>Z|(?P<sign>[+-])(?P<oh>\d{2}):(?P<om>\d{2}))?$"
)
_INT32 = (-(2**31), 2**31 - 1)


@dataclass(frozen=True, slots=True)
class Kind:
    """What the model expects at one element: its FHIR type name (for messages), the JSON
    type it must have, the model of a complex type, and whether it repeats."""

    name: str
    json: str  # object | resource | string | boolean | integer | number
    model: type[BaseModel] | None = None
    many: bool = False


def _strip_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def kind_of(annotation: Any) -> Kind | None:
    """The Kind of a model field annotation; None when it is not one the walk understands."""
    ann = _strip_optional(annotation)
    many = typing.get_origin(ann) in (list, typing.List)  # noqa: UP006 - typing.List is used
    if many:
        ann = _strip_optional(typing.get_args(ann)[0])
    if typing.get_origin(ann) is typing.Annotated:
        base, *meta = typing.get_args(ann)
        label = type(meta[0]).__name__ if meta else "string"
        name = label[0].lower() + label[1:]
        return Kind(name, _json_of(base), None, many)
    if ann is bool:
        return Kind("boolean", "boolean", None, many)
    get_model = getattr(ann, "get_model_klass", None)
    if isinstance(ann, type) and callable(get_model):
        name = ann.__name__.removesuffix("Type")
        if name == "Resource":
            return Kind("Resource", "resource", None, many)
        model = get_model()
        if isinstance(model, type) and issubclass(model, BaseModel):
            label = "Element" if name == "FHIRPrimitiveExtension" else name
            return Kind(label, "object", model, many)
    return None


def _json_of(base: Any) -> str:
    if base is bool:
        return "boolean"
    if base is int:
        return "integer"
    if base is Decimal:
        return "number"
    return "string"


@cache
def field_kinds(model: type[BaseModel]) -> dict[str, Kind]:
    """JSON name -> Kind, for each element of a model (cached: models are immutable)."""
    out: dict[str, Kind] = {}
    for name, info in model.model_fields.items():
        kind = kind_of(info.annotation)
        if kind is not None:
            out[info.alias or name] = kind
    return out


def _expected(kind: Kind) -> str:
    article = _ARTICLE.get(kind.json, f"a {kind.json}")
    return article if kind.name == kind.json else f"{article} ({kind.name})"


def _found(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


_ARTICLE = {"object": "an object", "integer": "an integer", "resource": "a resource object"}


def instant_problem(value: str) -> str | None:
    """Why a dateTime/instant with a time of day names no real moment; None when it does."""
    m = _TIME_RE.match(value)
    if not m:
        return None  # the model's own pattern check reports it
    if m["sign"] and (int(m["oh"]) > 14 or int(m["om"]) > 59):
        return "the time-zone offset is outside -14:00..+14:00"
    try:
        moment = datetime(int(m["y"]), int(m["m"]), int(m["d"]), int(m["H"]), int(m["M"]))
        if m["sign"]:
            sign = 1 if m["sign"] == "+" else -1
            moment -= sign * timedelta(hours=int(m["oh"]), minutes=int(m["om"]))
    except (ValueError, OverflowError):
        return "the moment is outside the years 0001-9999 in UTC"
    return None


class _Walk:
    def __init__(self, resolve: Callable[[str], type[BaseModel] | None]) -> None:
        self.resolve = resolve
        self.issues: list[Issue] = []
        self.too_deep = False

    def add(self, path: str, code: str, problem: str) -> None:
        if len(self.issues) < MAX_ISSUES:
            self.issues.append(Issue("error", code, f"{path}: {problem}", (path,)))

    def value(self, value: Any, kind: Kind | None, path: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            if not self.too_deep:  # once, with the path cut short: it is as long as the nesting
                self.too_deep = True
                short = path if len(path) <= 120 else path[:120] + "…"
                self.add(short, "too-costly", f"nested more than {MAX_DEPTH} levels deep")
            return
        if kind is None:
            self.untyped(value, path, depth)
        elif kind.json in ("object", "resource"):
            if not isinstance(value, dict):
                self.add(path, "structure", f"expected {_expected(kind)}, found {_found(value)}")
                return
            model = kind.model
            if kind.json == "resource":
                rtype = value.get("resourceType")
                model = self.resolve(rtype) if isinstance(rtype, str) else None
            self.obj(value, model, path, depth)
        else:
            self.primitive(value, kind, path)

    def primitive(self, value: Any, kind: Kind, path: str) -> None:
        ok = {
            "boolean": isinstance(value, bool),
            "integer": isinstance(value, int) and not isinstance(value, bool),
            "number": isinstance(value, int | float) and not isinstance(value, bool),
            "string": isinstance(value, str),
        }[kind.json]
        if not ok:
            self.add(path, "structure", f"expected {_expected(kind)}, found {_found(value)}")
        elif kind.json == "integer" and not _INT32[0] <= value <= _INT32[1]:
            self.add(path, "value", f"{kind.name} is outside the 32-bit range")
        elif isinstance(value, str):
            self.string(value, path)
            if kind.name == "id" and not _ID_RE.fullmatch(value):
                self.add(path, "value", "an id is 1-64 characters of A-Z, a-z, 0-9, '-' and '.'")
            elif kind.name in ("dateTime", "instant"):
                problem = instant_problem(value)
                if problem:
                    self.add(path, "value", problem)

    def string(self, value: str, path: str) -> None:
        if _CONTROL_RE.search(value):
            self.add(path, "value", "control characters (below U+0020) are not allowed")

    def obj(
        self, value: Mapping[str, Any], model: type[BaseModel] | None, path: str, depth: int
    ) -> None:
        if not value:
            self.add(path, "structure", "an object must not be empty")
            return
        kinds = field_kinds(model) if model is not None else {}
        for key, item in value.items():
            child = f"{path}.{key}"
            self.string(key, child)
            if key == "resourceType" and isinstance(item, str):
                continue
            kind = kinds.get(key)
            if item is None:
                self.add(child, "structure", "null is not allowed; leave the element out")
            elif kind is not None and kind.many:
                if not isinstance(item, list):
                    self.add(
                        child,
                        "structure",
                        f"expected an array of {kind.name}, found {_found(item)}",
                    )
                else:
                    self.array(item, kind, child, depth, value.get(_partner(key)))
            elif isinstance(item, list) and kind is not None:
                self.add(child, "structure", f"expected a single {kind.name}, found an array")
            else:
                self.value(item, kind, child, depth + 1)

    def array(
        self, items: list[Any], kind: Kind | None, path: str, depth: int, partner: Any
    ) -> None:
        if not items:
            self.add(path, "structure", "an array must not be empty; leave the element out")
            return
        for i, item in enumerate(items):
            if item is None:
                # Arrays of primitives may hold null where the "_name" array has the extension
                # (or the other way round); nowhere else.
                paired = isinstance(partner, list) and i < len(partner) and partner[i] is not None
                if not paired:
                    self.add(f"{path}[{i}]", "structure", "null is not allowed in an array")
                continue
            self.value(item, kind, f"{path}[{i}]", depth + 1)

    def untyped(self, value: Any, path: str, depth: int) -> None:
        """An element the walk has no type for (unknown to the model, which reports it)."""
        if isinstance(value, dict):
            self.obj(value, None, path, depth)
        elif isinstance(value, list):
            self.array(value, None, path, depth, None)
        elif isinstance(value, str):
            self.string(value, path)


def _partner(key: str) -> str:
    return key[1:] if key.startswith("_") else f"_{key}"


def json_issues(
    resource_type: str,
    resource: Mapping[str, Any],
    resolve: Callable[[str], type[BaseModel] | None],
) -> list[Issue]:
    """The FHIR JSON problems of one resource, each with its element path."""
    walk = _Walk(resolve)
    walk.obj(resource, resolve(resource_type), resource_type, 1)
    return walk.issues


def nesting_depth_exceeds(value: Any, limit: int) -> bool:
    """True when a parsed JSON value nests more than `limit` containers deep (iterative, so a
    hostile body cannot exhaust the stack while it is being measured)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False
