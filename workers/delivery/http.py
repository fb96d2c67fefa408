"""One HTTP POST to a receiver, with a timeout; 2xx is delivered, anything else is not.

Redirects are not followed: a notification (and its signature) goes only where the subscription
says. What is kept of a failure is the status code or the error class, never a response body.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from service import __version__

USER_AGENT = f"fhir-alerts/{__version__}"


@dataclass(frozen=True, slots=True)
class Result:
    ok: bool
    http_status: int | None
    error: str | None
    duration_ms: int


def post(
    endpoint: str,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout: float,
    transport: httpx.BaseTransport | None = None,
) -> Result:
    started = time.monotonic()
    status: int | None = None
    error: str | None = None
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False, transport=transport) as client:
            response = client.post(
                endpoint, content=body, headers={"User-Agent": USER_AGENT, **headers}
            )
        status = response.status_code
        if not 200 <= status < 300:
            error = f"HTTP {status}"
    except httpx.TimeoutException:
        error = "timeout"
    except httpx.HTTPError as exc:
        error = type(exc).__name__
    except Exception as exc:  # a malformed URL or header must fail the attempt, not the task
        error = type(exc).__name__
    elapsed = int((time.monotonic() - started) * 1000)
    return Result(error is None, status, error, elapsed)
