"""Value sets: which named sets a coding belongs to, by (system, code) only.

The sets ship as FHIR ValueSet resources (data/valuesets/*.json) so clinicians can read and
version them like any other terminology artefact. Only the parts of ValueSet.compose the rules
need are understood: `include[].concept` (exact codes) and, for ICD systems only, an `is-a`
filter on the concept, read as "every code under" (C50 covers C50.912 and C50.A1). Anything
else is refused at load time rather than silently ignored. Display text never takes part.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

EMPTY: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ValueSetDef:
    """One named value set, codes already normalised for matching."""

    name: str  # "BACK_PAIN": the name the rules refer to
    title: str  # plain words for the nurse ("back pain")
    url: str
    codes: frozenset[tuple[str, str]]  # (system, normalised code)
    prefixes: frozenset[tuple[str, str]] = frozenset()  # (system, normalised "is-a" root)


def normalise_code(system: str, code: str, dotless_systems: frozenset[str]) -> str:
    """ICD codes compare without their dot and case-insensitively (C50.912 = C50912)."""
    code = code.strip()
    if system in dotless_systems:
        return code.replace(".", "").upper()
    return code


def value_set_from_fhir(
    resource: Mapping[str, Any], dotless_systems: frozenset[str]
) -> ValueSetDef:
    """Read a FHIR ValueSet resource; raise ValueError on anything the matcher cannot honour."""
    if resource.get("resourceType") != "ValueSet":
        raise ValueError("not a ValueSet resource")
    compose = resource.get("compose")
    if not isinstance(compose, Mapping) or compose.get("exclude"):
        raise ValueError(f"ValueSet {resource.get('name')}: compose.exclude is not supported")
    codes: set[tuple[str, str]] = set()
    prefixes: set[tuple[str, str]] = set()
    for include in compose.get("include", ()):
        system = include["system"]
        if include.get("valueSet"):
            raise ValueError(f"ValueSet {resource.get('name')}: include.valueSet not supported")
        for concept in include.get("concept", ()):
            codes.add((system, normalise_code(system, concept["code"], dotless_systems)))
        for flt in include.get("filter", ()):
            if (
                flt.get("property") != "concept"
                or flt.get("op") != "is-a"
                or system not in dotless_systems
            ):
                raise ValueError(
                    f"ValueSet {resource.get('name')}: only concept is-a filters on ICD"
                    f" systems are supported, got {flt!r} for {system}"
                )
            prefixes.add((system, normalise_code(system, flt["value"], dotless_systems)))
    return ValueSetDef(
        name=str(resource["name"]),
        title=str(resource.get("title") or resource["name"]),
        url=str(resource.get("url", "")),
        codes=frozenset(codes),
        prefixes=frozenset(prefixes),
    )


class CodeIndex:
    """(system, code) → names of the value sets holding it; built once per rule set."""

    __slots__ = ("_dotless", "_exact", "_prefix_lengths", "_prefixes")

    def __init__(self, value_sets: Iterable[ValueSetDef], dotless_systems: frozenset[str]):
        exact: dict[tuple[str, str], set[str]] = {}
        prefixes: dict[str, dict[str, set[str]]] = {}
        for vs in value_sets:
            for key in vs.codes:
                exact.setdefault(key, set()).add(vs.name)
            for system, root in vs.prefixes:
                prefixes.setdefault(system, {}).setdefault(root, set()).add(vs.name)
        self._dotless = dotless_systems
        self._exact = {key: frozenset(names) for key, names in exact.items()}
        self._prefixes = {
            system: {root: frozenset(names) for root, names in roots.items()}
            for system, roots in prefixes.items()
        }
        self._prefix_lengths = {
            system: tuple(sorted({len(root) for root in roots}))
            for system, roots in self._prefixes.items()
        }

    def lookup(self, system: str, code: str) -> frozenset[str]:
        """Names of the sets a coding belongs to (empty when none)."""
        norm = normalise_code(system, code, self._dotless)
        found = self._exact.get((system, norm), EMPTY)
        roots = self._prefixes.get(system)
        if roots is not None:
            for length in self._prefix_lengths[system]:
                if len(norm) >= length:
                    hit = roots.get(norm[:length])
                    if hit is not None:
                        found = found | hit
        return found
