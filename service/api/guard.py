"""The outermost layer of the app: what no route should have to think about.

- Every request gets an id (the `X-Request-ID` response header), so an operator can match a
  client's report to the one log line of a failure without that line quoting anything.
- A request body must arrive within `body_timeout_seconds`: a client that sends headers and
  half a body gets 408 and the connection is closed, instead of holding a worker forever.
- A URL carrying NUL is refused (400) before any route sees it: PostgreSQL cannot store NUL,
  and no FHIR id, search value or parameter may contain one.
- An unexpected exception becomes a 500 OperationOutcome with `Connection: close` (the
  connection's state is unknown). It is logged as its type name and the request id only: the
  message and traceback may quote patient data, and nothing is re-raised to the server, so
  uvicorn prints no traceback either.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import FHIRError, Issue, operation_outcome

log = logging.getLogger("service.api.app")

FHIR_JSON = b"application/fhir+json; charset=utf-8"


class BodyTimeout(FHIRError):
    """The client stopped sending its body: 408, and the connection is not reused."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            408,
            [Issue("error", "timeout", f"The request body did not arrive within {seconds:g}s")],
            {"Connection": "close"},
        )


def _has_nul(scope: Scope) -> bool:
    raw = scope.get("raw_path") or scope.get("path", "").encode("utf-8", "surrogateescape")
    target = bytes(raw) + b"?" + bytes(scope.get("query_string", b""))
    return b"\x00" in target or b"%00" in target.lower()


class RequestGuard:
    """Pure ASGI middleware (not BaseHTTPMiddleware: it must see exceptions and the raw
    receive channel, and add no task group)."""

    def __init__(self, app: ASGIApp, *, body_timeout: float) -> None:
        self.app = app
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        if _has_nul(scope):
            issue = Issue("error", "invalid", "The URL contains a NUL character")
            await _respond(send_with_id, 400, operation_outcome([issue]), close=False)
            return

        deadline = time.monotonic() + self.body_timeout
        body_done = timed_out = False

        async def receive_by_deadline() -> Message:
            nonlocal body_done, timed_out
            if body_done:  # after the body, receive() only waits for a disconnect
                return await receive()
            remaining = deadline - time.monotonic()
            try:
                # `asyncio.timeout`, not `wait_for`: on Python 3.11 wait_for wraps every
                # receive() in a new task (a visible share of a single POST's event-loop time).
                async with asyncio.timeout(max(remaining, 0.001)):
                    message = await receive()
            except TimeoutError:
                timed_out = True
                raise BodyTimeout(self.body_timeout) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        try:
            await self.app(scope, receive_by_deadline, send_with_id)
        except Exception as exc:
            if timed_out:  # BodyTimeout, possibly wrapped in a task group's ExceptionGroup
                log.info("request %s: the body did not arrive in time", request_id)
                if not started:
                    outcome = BodyTimeout(self.body_timeout).operation_outcome()
                    await _respond(send_with_id, 408, outcome, close=True)
                return
            log.error("unexpected %s; request %s", type(exc).__name__, request_id)
            if started:
                return  # the server closes a connection whose response never completed
            issue = Issue(
                "fatal",
                "exception",
                f"Internal server error; the request was not applied (request {request_id})",
            )
            await _respond(send_with_id, 500, operation_outcome([issue]), close=True)


async def _respond(send: Send, status: int, body: dict[str, Any], *, close: bool) -> None:
    content = orjson.dumps(body)
    headers = [
        (b"content-type", FHIR_JSON),
        (b"content-length", str(len(content)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})
