"""What clients send: one body schema per resource, for create, replace (PUT) and merged
patch (PATCH) alike, so every write is checked by the same rules; paging and filter parameters."""

from __future__ import annotations

from typing import Annotated, Any

from flask import request
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from ..api.request import int_arg
from ..errors import BadRequest
from .models import CONTENT_LENGTH, MAX_AGE, MAX_ID, NAME_LENGTH, TITLE_LENGTH

MAX_TAGS = 50
PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


def _no_control_characters(value: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("must not contain control characters")
    return value


def _no_nul(value: str) -> str:
    if "\x00" in value:  # PostgreSQL text cannot hold it
        raise ValueError("must not contain NUL characters")
    return value


Name = Annotated[
    str,
    StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=NAME_LENGTH),
    AfterValidator(_no_control_characters),
]
Title = Annotated[
    str,
    StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=TITLE_LENGTH),
    AfterValidator(_no_control_characters),
]
Content = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=CONTENT_LENGTH),
    AfterValidator(_no_nul),
]
Age = Annotated[StrictInt, Field(ge=0, le=MAX_AGE)]
Id = Annotated[StrictInt, Field(ge=1, le=MAX_ID)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserIn(_Body):
    """A user as clients send it."""

    name: Name
    age: Age | None = None


class TagIn(_Body):
    """A tag as clients send it."""

    name: Name


class BlogIn(_Body):
    """A blog as clients send it: the author by id, tags by name (missing ones are created)."""

    title: Title
    content: Content
    author_id: Id
    tags: Annotated[list[Name], Field(max_length=MAX_TAGS)] = Field(default_factory=list)

    @field_validator("tags")
    @classmethod
    def _unique(cls, names: list[str]) -> list[str]:
        return list(dict.fromkeys(names))


def page_args() -> dict[str, Any]:
    """Read ``limit`` (default 20, at most 100) and ``offset`` from the query string.

    :raises BadRequest: naming the parameter.
    """
    return {
        "limit": int_arg("limit", default=PAGE_SIZE, minimum=1, maximum=MAX_PAGE_SIZE),
        "offset": int_arg("offset", default=0, minimum=0, maximum=MAX_ID),
    }


_NAME = TypeAdapter(Name)


def name_arg(param: str) -> str | None:
    """Read a query parameter that filters by a user or tag name (stripped).

    :raises BadRequest: the value could not be a name.
    """
    raw = request.args.get(param)
    if raw is None:
        return None
    try:
        return _NAME.validate_python(raw)
    except ValidationError as exc:
        problem = exc.errors()[0]["msg"]
        raise BadRequest(f"query parameter {param!r}: {problem}", errors={param: problem}) from None
