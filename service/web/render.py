"""Jinja2 templates and static assets, loaded from the package (they ship as package data)."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

STATIC_TYPES = {
    "worklist.css": "text/css; charset=utf-8",
    "worklist.js": "text/javascript; charset=utf-8",
}


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("service.web", "templates"),
        autoescape=select_autoescape(["html", "svg"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["asset"] = asset_url
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


@lru_cache(maxsize=len(STATIC_TYPES))
def static_bytes(name: str) -> bytes:
    return resources.files("service.web").joinpath("static", name).read_bytes()


def asset_url(name: str) -> str:
    """The asset's URL with a content hash, so a new release is never served a stale copy."""
    digest = hashlib.sha256(static_bytes(name)).hexdigest()[:12]
    return f"/worklist/static/{name}?v={digest}"
