"""FHIR JSON responses: the stored bytes go out as they are (no re-serialisation)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Response

from service.store.resources import Stored

FHIR_JSON = "application/fhir+json; charset=utf-8"


def fhir_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return Response(content=content, status_code=status, media_type=FHIR_JSON, headers=headers)


def stored_response(
    stored: Stored, status: int = 200, *, base: str = "", location: bool = False
) -> Response:
    headers = {
        "ETag": stored.etag,
        "Last-Modified": stored.last_updated.strftime("%a, %d %b %Y %H:%M:%S GMT"),
    }
    if location:
        headers["Location"] = f"{base}/{stored.location}"
        headers["Content-Location"] = headers["Location"]
    return fhir_response(stored.content, status, headers)
