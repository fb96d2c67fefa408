"""The searchset Bundle of one page: matches, then what `_include`/`_revinclude` added, with
self/next/previous links that repeat every parameter of the search. Pure: no I/O."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from service.fhir.search import SearchQuery
from service.fhir.shaping import select_elements, summarize


def _shape(resource: dict[str, Any], q: SearchQuery, *, match: bool) -> dict[str, Any]:
    if q.elements is not None and match:  # _elements narrows the matches, not the includes
        return select_elements(resource, q.elements)
    return summarize(resource, q.summary)


def searchset(
    base: str,
    q: SearchQuery,
    matches: list[dict[str, Any]],
    included: list[dict[str, Any]],
    total: int | None,
    *,
    truncated: bool = False,
) -> dict[str, Any]:
    """`total` counts matches only; included resources never change paging. `truncated`:
    more resources would have been included than the server adds to one page."""
    url = f"{base}/{q.resource_type}"

    def link(offset: int) -> str:
        params = [*q.echo, ("_count", str(q.count)), ("_offset", str(offset))]
        return f"{url}?{urlencode(params)}"

    links = [{"relation": "self", "url": link(q.offset)}]
    if not q.summary_count:  # a count has no pages
        more = len(matches) == q.count and q.count > 0
        if total is not None:
            more = q.count > 0 and q.offset + len(matches) < total
        if more:
            links.append({"relation": "next", "url": link(q.offset + q.count)})
        if q.offset > 0:
            links.append({"relation": "previous", "url": link(max(0, q.offset - q.count))})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if total is not None:
        bundle["total"] = total
    bundle["link"] = links
    entries = [
        {
            "fullUrl": f"{base}/{res['resourceType']}/{res['id']}",
            "resource": _shape(res, q, match=True),
            "search": {"mode": "match"},
        }
        for res in matches
    ]
    entries += [
        {
            "fullUrl": f"{base}/{res['resourceType']}/{res['id']}",
            "resource": _shape(res, q, match=False),
            "search": {"mode": "include"},
        }
        for res in included
    ]
    if truncated:
        entries.append(
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": {
                    "resourceType": "OperationOutcome",
                    "issue": [
                        {
                            "severity": "warning",
                            "code": "too-costly",
                            "diagnostics": (
                                f"Only the first {len(included)} included resources are "
                                "in this page; ask for smaller pages to get them all"
                            ),
                        }
                    ],
                },
                "search": {"mode": "outcome"},
            }
        )
    if entries:  # FHIR JSON has no empty arrays
        bundle["entry"] = entries
    return bundle
