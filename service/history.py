"""history-instance (`GET Type/id/_history`): every stored version of one resource, newest
first, deletions as entries without a resource, as a FHIR `history` Bundle."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.orm import Session

from service.errors import not_found
from service.interactions import WriteContext, require_served
from service.store import resources as store


def instance_history(
    session: Session, ctx: WriteContext, resource_type: str, resource_id: str, *, base: str
) -> dict[str, Any]:
    """Served type (404) and read rights (403) before anything is looked up; an id that
    never existed is a 404."""
    require_served(resource_type)
    ctx.principal.require(resource_type, "read")
    versions = store.history(session, resource_type, resource_id)
    if not versions:
        raise not_found(f"{resource_type}/{resource_id} is not known")
    url = f"{resource_type}/{resource_id}"
    entries = []
    for v in versions:
        entry: dict[str, Any] = {
            "fullUrl": f"{base}/{url}",
            "request": {"method": v.method, "url": url},
            "response": {
                "status": "200 OK" if not v.deleted else "204 No Content",
                "etag": f'W/"{v.version_id}"',
                "lastModified": store.fhir_instant(v.last_updated),
            },
        }
        if v.content:
            entry["resource"] = orjson.loads(v.content)
        entries.append(entry)
    return {"resourceType": "Bundle", "type": "history", "total": len(entries), "entry": entries}
