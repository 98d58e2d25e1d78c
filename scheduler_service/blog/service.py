"""The data work of the blog resources: validate, query, change and commit; domain errors out.

Every write checks what it can first (a taken name is a 409, an unknown author a 422) and
commits in one transaction; a constraint the database still refuses means a concurrent request
won a race, and becomes a 409 after a rollback. Nothing changes unless the whole request
applies.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from ..errors import Conflict, NotFound, Unprocessable, ValidationFailed, validation_errors
from ..extensions import db
from .limits import MAX_ID
from .models import Blog, Tag, User, post_tags, utcnow
from .schemas import MAX_PAGE_SIZE, PAGE_SIZE, BlogIn, TagIn, UserIn

T = TypeVar("T")
S = TypeVar("S", bound=BaseModel)
M = TypeVar("M", User, Blog, Tag)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, and how many items the whole list holds."""

    items: Sequence[T]
    total: int


# -- shared steps ------------------------------------------------------------------------------


def _validate(schema: type[S], body: Any, noun: str) -> S:
    try:
        return schema.model_validate(body)
    except ValidationError as exc:
        raise ValidationFailed(f"the {noun} is not valid", errors=validation_errors(exc)) from None


def _find(model: type[M], ident: int, noun: str, *options: Any) -> M:
    found = db.session.get(model, ident, options=options) if 1 <= ident <= MAX_ID else None
    if found is None:
        raise NotFound(f"{noun} {ident} not found")
    return found


@contextmanager
def _transaction(*, conflict: str) -> Iterator[None]:
    """Commit what the block changes; roll back on any error, and answer a constraint the
    database refuses (a concurrent request won a race) with a Conflict."""
    try:
        yield
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(f"{conflict}; the data is unchanged") from None
    except BaseException:
        db.session.rollback()
        raise


def _page(query: sa.Select[Any], *, limit: int, offset: int) -> Page[Any]:
    counted = sa.select(sa.func.count()).select_from(query.order_by(None).subquery())
    items = db.session.scalars(query.limit(min(limit, MAX_PAGE_SIZE)).offset(offset)).all()
    return Page(items=items, total=db.session.scalar(counted) or 0)


def _ensure_free(model: type[User | Tag], name: str, *, noun: str, ident: int | None) -> None:
    taken = db.session.scalar(sa.select(model.id).where(model.name == name))
    if taken is not None and taken != ident:
        raise Conflict(f"{noun} name {name!r} is already taken", errors={"name": "already taken"})


def _merged(current: dict[str, Any], body: Any) -> Any:
    """Return the current fields updated by a PATCH body (a non-object body is left to fail)."""
    return {**current, **body} if isinstance(body, dict) else body


# -- users -------------------------------------------------------------------------------------


def create_user(*, body: Any) -> User:
    """Create a user from a request body.

    :raises ValidationFailed: the body is not a valid user.
    :raises Conflict: the name is taken.
    """
    data = _validate(UserIn, body, "user")
    user = User(name=data.name, age=data.age)
    with _transaction(conflict=f"user name {data.name!r} is taken"):
        _ensure_free(User, data.name, noun="user", ident=None)
        db.session.add(user)
    return user


def list_users(*, name: str | None = None, limit: int = PAGE_SIZE, offset: int = 0) -> Page[User]:
    """Return a page of users by id, only those called ``name`` when given."""
    query = sa.select(User).order_by(User.id)
    if name is not None:
        query = query.where(User.name == name)
    return _page(query, limit=limit, offset=offset)


def get_user(*, user_id: int) -> User:
    """Return one user.

    :raises NotFound: no such user.
    """
    return _find(User, user_id, "user")


def update_user(*, user_id: int, body: Any, partial: bool) -> User:
    """Replace a user's fields, or with ``partial`` merge the body into them first.

    :raises NotFound, ValidationFailed, Conflict:
    """
    user = get_user(user_id=user_id)
    if partial:
        body = _merged({"name": user.name, "age": user.age}, body)
    data = _validate(UserIn, body, "user")
    with _transaction(conflict=f"user name {data.name!r} is taken"):
        _ensure_free(User, data.name, noun="user", ident=user.id)
        user.name, user.age = data.name, data.age
    return user


def delete_user(*, user_id: int, cascade: bool = False) -> None:
    """Delete a user, and with ``cascade`` the user's blogs.

    :raises NotFound: no such user.
    :raises Conflict: the user still has blogs and ``cascade`` is off.
    """
    user = get_user(user_id=user_id)
    blogs = sa.select(Blog.id).where(Blog.author_id == user.id)
    with _transaction(conflict=f"user {user_id} gained blogs meanwhile; retry"):
        if cascade:
            db.session.execute(sa.delete(post_tags).where(post_tags.c.blog_id.in_(blogs)))
            db.session.execute(sa.delete(Blog).where(Blog.author_id == user.id))
        elif db.session.scalar(sa.select(blogs.exists())):
            raise Conflict(
                f"user {user_id} still has blogs: delete them first, or add ?cascade=true"
            )
        db.session.delete(user)


# -- tags --------------------------------------------------------------------------------------


def create_tag(*, body: Any) -> Tag:
    """Create a tag from a request body.

    :raises ValidationFailed, Conflict:
    """
    data = _validate(TagIn, body, "tag")
    tag = Tag(name=data.name)
    with _transaction(conflict=f"tag name {data.name!r} is taken"):
        _ensure_free(Tag, data.name, noun="tag", ident=None)
        db.session.add(tag)
    return tag


def list_tags(*, limit: int = PAGE_SIZE, offset: int = 0) -> Page[Tag]:
    """Return a page of tags by id."""
    return _page(sa.select(Tag).order_by(Tag.id), limit=limit, offset=offset)


def get_tag(*, tag_id: int) -> Tag:
    """Return one tag.

    :raises NotFound: no such tag.
    """
    return _find(Tag, tag_id, "tag")


def update_tag(*, tag_id: int, body: Any, partial: bool) -> Tag:
    """Rename a tag (PUT and PATCH differ only in what may be left out).

    :raises NotFound, ValidationFailed, Conflict:
    """
    tag = get_tag(tag_id=tag_id)
    data = _validate(TagIn, _merged({"name": tag.name}, body) if partial else body, "tag")
    with _transaction(conflict=f"tag name {data.name!r} is taken"):
        _ensure_free(Tag, data.name, noun="tag", ident=tag.id)
        tag.name = data.name
    return tag


def delete_tag(*, tag_id: int) -> None:
    """Delete a tag and take it off every blog that has it.

    :raises NotFound: no such tag.
    """
    tag = get_tag(tag_id=tag_id)
    with _transaction(conflict=f"tag {tag_id} changed meanwhile; retry"):
        db.session.delete(tag)


# -- blogs -------------------------------------------------------------------------------------

_BLOG_LOADS = (selectinload(Blog.author), selectinload(Blog.tags))


def _author(author_id: int) -> User:
    author = db.session.get(User, author_id)
    if author is None:
        raise Unprocessable(
            f"the author does not exist: no user {author_id}",
            errors={"author_id": f"no user {author_id}"},
        )
    return author


def _tags(names: list[str]) -> list[Tag]:
    """Return the tags called ``names``, in that order, creating the missing ones."""
    if not names:
        return []
    found = {t.name: t for t in db.session.scalars(sa.select(Tag).where(Tag.name.in_(names)))}
    return [found.get(name) or Tag(name=name) for name in names]


def create_blog(*, body: Any) -> Blog:
    """Create a blog; tags named in it that do not exist yet are created.

    :raises ValidationFailed: the body is not a valid blog.
    :raises Unprocessable: the author does not exist.
    :raises Conflict: a concurrent request created one of the tags or removed the author.
    """
    data = _validate(BlogIn, body, "blog")
    with _transaction(conflict="a concurrent request changed the author or the tags; retry"):
        author, tags, now = _author(data.author_id), _tags(data.tags), utcnow()
        blog = Blog(title=data.title, content=data.content, author=author, tags=tags)
        blog.created_at = blog.updated_at = now
        db.session.add(blog)
    return blog


def list_blogs(
    *, author_id: int | None = None, tag: str | None = None, limit: int = PAGE_SIZE, offset: int = 0
) -> Page[Blog]:
    """Return a page of blogs by id, filtered by author and by tag name when given."""
    query = sa.select(Blog).options(*_BLOG_LOADS).order_by(Blog.id)
    if author_id is not None:
        query = query.where(Blog.author_id == author_id)
    if tag is not None:
        query = query.where(Blog.tags.any(Tag.name == tag))
    return _page(query, limit=limit, offset=offset)


def get_blog(*, blog_id: int) -> Blog:
    """Return one blog.

    :raises NotFound: no such blog.
    """
    return _find(Blog, blog_id, "blog", *_BLOG_LOADS)


def update_blog(*, blog_id: int, body: Any, partial: bool) -> Blog:
    """Replace a blog's fields, or with ``partial`` merge the body into them first; the
    timestamp ``updated_at`` moves only when something changed.

    :raises NotFound, ValidationFailed, Unprocessable, Conflict:
    """
    blog = get_blog(blog_id=blog_id)
    fields = {"title": blog.title, "content": blog.content, "author_id": blog.author_id}
    tags = [tag.name for tag in blog.tags]
    data = _validate(BlogIn, _merged({**fields, "tags": tags}, body) if partial else body, "blog")
    new_tags = set(data.tags) != set(tags)
    if data.model_dump(exclude={"tags"}) == fields and not new_tags:
        return blog
    with _transaction(conflict="a concurrent request changed the author or the tags; retry"):
        if data.author_id != blog.author_id:
            blog.author = _author(data.author_id)
        if new_tags:
            blog.tags = _tags(data.tags)
        blog.title, blog.content = data.title, data.content
        blog.updated_at = utcnow()
    return blog


def delete_blog(*, blog_id: int) -> None:
    """Delete a blog (its tags stay).

    :raises NotFound: no such blog.
    """
    blog = get_blog(blog_id=blog_id)
    with _transaction(conflict=f"blog {blog_id} changed meanwhile; retry"):
        db.session.delete(blog)
