"""The store's write hook: what runs inside the writer's transaction when a version is saved.

The store does not know Subscriptions. Whoever composes a process that writes resources (the
API's `create_app`, the Celery app) installs the hook at startup
(`service.subscriptions.hook.install`). A save with no hook installed fails loudly: a process
wired without it would otherwise store alerts whose notifications are silently never sent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session


class SaveHook(Protocol):
    def __call__(
        self,
        session: Session,
        *,
        resource_type: str,
        resource_id: str,
        version_id: int,
        resource: dict[str, Any],
        previous: bytes | None,
        now: datetime,
    ) -> dict[str, Any]:
        """The resource to store (a hook may normalise it, or raise to refuse the write).
        `previous` is the current version's JSON, None when there is none or it is deleted."""
        ...


_installed: list[SaveHook] = []


def install_save_hook(hook: SaveHook) -> None:
    """Make `hook` the one that runs on every save (idempotent; a second, different hook
    replaces the first, so a process has exactly one)."""
    _installed[:] = [hook]


def save_hook() -> SaveHook:
    if not _installed:
        raise RuntimeError(
            "no store write hook installed: call service.subscriptions.hook.install() when the "
            "process starts (create_app and the Celery app do)"
        )
    return _installed[0]
