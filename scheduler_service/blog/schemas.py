"""What clients send and what they get back: one body schema per resource, for create, replace
(PUT) and merged patch (PATCH) alike, so every write is checked by the same rules; paging and
filter parameters; the JSON of each resource (which the OpenAPI document shows)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    field_validator,
)

from ..openapi import partial_model
from .limits import CONTENT_LENGTH, MAX_AGE, MAX_ID, NAME_LENGTH, TITLE_LENGTH

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


# What a PATCH may send: any fields, merged into the resource, which is then validated whole.
UserPatch = partial_model(UserIn, name="UserPatch")
TagPatch = partial_model(TagIn, name="TagPatch")
BlogPatch = partial_model(BlogIn, name="BlogPatch")


# -- query strings -------------------------------------------------------------------------------


class PageQuery(BaseModel):
    """A page of a list, by id."""

    limit: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = PAGE_SIZE
    offset: Annotated[int, Field(ge=0, le=MAX_ID)] = 0


class UserQuery(PageQuery):
    """Filters of the user list."""

    name: Name | None = None


class BlogQuery(PageQuery):
    """Filters of the blog list."""

    author_id: Annotated[int, Field(ge=1, le=MAX_ID)] | None = None
    tag: Name | None = None


class DeleteUserQuery(BaseModel):
    """Options of a user's deletion."""

    cascade: bool = Field(False, description="delete the user's blogs too")


# -- answers -------------------------------------------------------------------------------------


class UserOut(_Body):
    """A user as the API shows it."""

    id: int
    name: str
    age: int | None


class TagOut(_Body):
    """A tag as the API shows it."""

    id: int
    name: str


class BlogOut(_Body):
    """A blog as the API shows it: the author inline, tags by name."""

    id: int
    title: str
    content: str
    author_id: int
    author: UserOut
    tags: list[str]
    created_at: datetime
    updated_at: datetime
