"""Which scopes a SMART backend client is granted: the intersection of what it asks for and
what it is registered for, computed on permissions rather than on spelling.

`system/Observation.write` asked by a client registered for `system/Observation.cu` grants
`system/Observation.cu` (v1 `write` is create, update and delete; delete is not registered);
`system/*.rs` asked by a client registered for `system/Flag.read` grants `system/Flag.rs`. A
request scope entirely covered by a registration is granted as written. Only `system/`
scopes are grantable to a backend client, and v2 scopes with a query (`?category=…`) are not
supported: neither is ever granted. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

_ORDER = "cruds"
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}


@dataclass(frozen=True, slots=True)
class _Scope:
    resource_type: str  # a type or "*"
    letters: frozenset[str]  # subset of c r u d s


def _parse(scope: str) -> _Scope | None:
    context, _, rest = scope.partition("/")
    resource_type, dot, perm = rest.partition(".")
    if context != "system" or not dot or not resource_type or "?" in perm:
        return None
    if not (resource_type == "*" or resource_type.isalnum()):
        return None
    letters = _V1.get(perm, perm)
    if not letters or not set(letters) <= set(_ORDER) or len(set(letters)) != len(letters):
        return None
    return _Scope(resource_type, frozenset(letters))


def _meet(asked: _Scope, registered: _Scope) -> _Scope | None:
    if asked.resource_type == "*":
        rtype = registered.resource_type
    elif registered.resource_type in ("*", asked.resource_type):
        rtype = asked.resource_type
    else:
        return None
    letters = asked.letters & registered.letters
    return _Scope(rtype, letters) if letters else None


def _render(scope: _Scope) -> str:
    return f"system/{scope.resource_type}." + "".join(c for c in _ORDER if c in scope.letters)


def grant(asked: str, registered: str) -> list[str]:
    """The scopes to grant, in the order asked, without duplicates (possibly none)."""
    held = [s for s in (_parse(r) for r in registered.split()) if s is not None]
    granted: list[str] = []
    for text in asked.split():
        want = _parse(text)
        if want is None:
            continue
        parts = [m for m in (_meet(want, h) for h in held) if m is not None]
        rendered = [text] if want in parts else [_render(p) for p in parts]
        for r in rendered:
            if r not in granted:
                granted.append(r)
    return granted
