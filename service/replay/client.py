"""A small synchronous HTTP client for a running fhir-alerts server (httpx, with timeouts).

Only what `replay` needs: POST a Bundle, watch the evaluation backlog, and search with paging.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

import httpx
import orjson

FHIR_JSON = "application/fhir+json"
TOKEN_ENV = "ALERTS_TOKEN"


class ReplayHTTPError(Exception):
    """The server answered a request with an error status."""

    def __init__(self, status: int, body: Any, what: str) -> None:
        super().__init__(f"{what}: HTTP {status}")
        self.status = status
        self.body = body
        self.what = what


class BacklogTimeout(Exception):
    def __init__(self, pending: int, waited: float) -> None:
        super().__init__(f"{pending} evaluation(s) still pending after {waited:.0f} s")
        self.pending = pending


def server_root(url: str) -> str:
    """The server's root URL; a FHIR base (`…/fhir`) is accepted too."""
    root = url.rstrip("/")
    return root.removesuffix("/fhir")


def resolve_token(explicit: str | None) -> str:
    """--token, else $ALERTS_TOKEN, else a token minted from the local configuration, which a
    server started on this machine with the same configuration (data dir or secret) accepts."""
    if explicit:
        return explicit
    env = os.environ.get(TOKEN_ENV)
    if env:
        return env
    from service.auth import mint
    from service.config import get_settings

    settings = get_settings()
    return mint(
        settings.signing_secret(),
        scope="system/*.*",
        ttl=6 * 3600,
        subject="fhir-alerts-replay",
        audience=settings.local_token_audience,  # the server refuses tokens for another base
    )


def _body(response: httpx.Response) -> Any:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.text[:500]


class ReplayClient:
    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 120.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.root = server_root(url)
        self._http = httpx.Client(
            base_url=self.root,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": FHIR_JSON,
                "User-Agent": "fhir-alerts-replay",
            },
            timeout=httpx.Timeout(timeout, connect=10.0),
            transport=transport,
        )

    def __enter__(self) -> ReplayClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def post_bundle(self, body: bytes, as_of: str | None = None) -> tuple[int, Any]:
        """POST /fhir; returns (status, parsed body) whatever the status."""
        params = {"asOf": as_of} if as_of else None
        r = self._http.post(
            "/fhir", content=body, params=params, headers={"Content-Type": FHIR_JSON}
        )
        return r.status_code, _body(r)

    def backlog(self) -> int:
        r = self._http.get("/ops/backlog")
        if r.status_code != 200:
            raise ReplayHTTPError(r.status_code, _body(r), "GET /ops/backlog")
        pending = r.json().get("pending")
        return int(pending)

    def wait_idle(
        self,
        timeout: float,
        *,
        poll: float = 0.2,
        on_poll: Callable[[int], None] | None = None,
    ) -> None:
        """Until every stored write has been evaluated (`{"pending": 0}`)."""
        start = time.monotonic()
        while True:
            pending = self.backlog()
            if on_poll is not None:
                on_poll(pending)
            if pending == 0:
                return
            waited = time.monotonic() - start
            if waited >= timeout:
                raise BacklogTimeout(pending, waited)
            time.sleep(poll)

    def search_all(
        self, resource_type: str, params: Sequence[tuple[str, str]] | Mapping[str, str]
    ) -> list[dict[str, Any]]:
        """Every match, following the Bundle's `next` links."""
        out: list[dict[str, Any]] = []
        url: str | None = f"/fhir/{resource_type}"
        query: Any = params
        while url is not None:
            r = self._http.get(url, params=query)
            if r.status_code != 200:
                raise ReplayHTTPError(r.status_code, _body(r), f"GET /fhir/{resource_type}")
            bundle = r.json()
            out.extend(
                e["resource"]
                for e in bundle.get("entry") or []
                if isinstance(e, Mapping) and isinstance(e.get("resource"), dict)
            )
            url = next(
                (
                    link.get("url")
                    for link in bundle.get("link") or []
                    if link.get("relation") == "next"
                ),
                None,
            )
            query = None  # the next link carries the whole query
        return out
