"""`_summary` and `_elements`: serve part of a resource, marked SUBSETTED as FHIR requires
(a client must not mistake a subset for the whole resource and write it back).

Which elements are summary and which are mandatory comes from the R4B structure definitions
behind `fhir.resources` (the types we serve are the same in R4), so nothing is hand-listed.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
    "display": "subsetted",
}
_ALWAYS = frozenset({"resourceType", "id", "meta"})


@lru_cache(maxsize=64)
def _elements_of(resource_type: str) -> tuple[frozenset[str], frozenset[str]]:
    """(summary elements, mandatory elements) of a type, by JSON name."""
    model = get_fhir_model_class(resource_type)
    summary: set[str] = set()
    mandatory: set[str] = set()
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        json_name = info.alias or name
        if extra.get("summary_element_property"):
            summary.add(json_name)
        if info.is_required() or extra.get("element_required") or extra.get("one_of_many_required"):
            mandatory.add(json_name)
    return frozenset(summary), frozenset(mandatory)


def _keep(resource: dict[str, Any], wanted: set[str]) -> dict[str, Any]:
    """The resource with only `wanted` elements (a choice base name such as "effective"
    keeps effectiveDateTime etc.; primitive extensions "_x" follow "x")."""

    def kept(key: str) -> bool:
        name = key[1:] if key.startswith("_") else key
        if name in wanted:
            return True
        return any(name.startswith(w) and name[len(w) : len(w) + 1].isupper() for w in wanted)

    return {k: v for k, v in resource.items() if kept(k)}


def _tag(resource: dict[str, Any]) -> dict[str, Any]:
    meta = dict(resource.get("meta") or {})
    tags = [t for t in meta.get("tag", []) if t.get("code") != "SUBSETTED"]
    meta["tag"] = [*tags, SUBSETTED]
    return {**resource, "meta": meta}


def summarize(resource: dict[str, Any], summary: str) -> dict[str, Any]:
    """`_summary=true|text|data|false` applied to one resource."""
    if summary == "false":
        return resource
    rtype = str(resource.get("resourceType"))
    summary_elements, mandatory = _elements_of(rtype)
    if summary == "true":
        return _tag(_keep(resource, set(summary_elements | mandatory | _ALWAYS)))
    if summary == "text":
        return _tag(_keep(resource, set(mandatory | _ALWAYS | {"text"})))
    if summary == "data":
        return _tag({k: v for k, v in resource.items() if k != "text"})
    raise ValueError(summary)


def select_elements(resource: dict[str, Any], elements: tuple[str, ...]) -> dict[str, Any]:
    """`_elements=a,b`: the listed elements plus the mandatory ones (and id, meta)."""
    _summary, mandatory = _elements_of(str(resource.get("resourceType")))
    return _tag(_keep(resource, set(elements) | mandatory | _ALWAYS))
