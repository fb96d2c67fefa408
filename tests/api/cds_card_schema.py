"""The CDS Hooks 2.0 card shape (https://cds-hooks.hl7.org/2.0/#cds-service-response), as a
pydantic model written from the spec: every card the service answers with must fit it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl


class Coding(BaseModel):
    model_config = ConfigDict(extra="forbid")
    system: str | None = None
    code: str = Field(min_length=1)
    display: str | None = None


class Source(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str = Field(min_length=1)
    url: HttpUrl | None = None
    icon: HttpUrl | None = None
    topic: Coding | None = None


class Link(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str = Field(min_length=1)
    url: HttpUrl
    type: Literal["absolute", "smart"]
    appContext: str | None = None


class Action(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["create", "update", "delete"]
    description: str
    resource: dict[str, object] | None = None
    resourceId: list[str] | None = None


class Suggestion(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str
    uuid: str | None = None
    isRecommended: bool | None = None
    actions: list[Action] | None = None


class Card(BaseModel):
    model_config = ConfigDict(extra="forbid")
    uuid: str | None = None
    summary: str = Field(min_length=1, max_length=140)
    detail: str | None = None
    indicator: Literal["info", "warning", "critical"]
    source: Source
    suggestions: list[Suggestion] | None = None
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: list[Coding] | None = None
    links: list[Link] | None = None


class Response(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cards: list[Card]
    systemActions: list[Action] | None = None


def check_response(body: object) -> Response:
    """Validate a service response (raises pydantic.ValidationError on any deviation)."""
    response = Response.model_validate(body)
    for card in response.cards:
        assert (card.suggestions is None) or (card.selectionBehavior is not None)
    return response
