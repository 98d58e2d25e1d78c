"""The blog tables: users, blog posts, tags and the post-tag association (migration 0001_blog).

Tables are prefixed ``blog_`` so they never collide with the service's own tables, and every
constraint is named so that the migration and the models describe the same schema.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..dbtypes import UTCDateTime, utcnow
from ..extensions import db
from .limits import MAX_AGE, NAME_LENGTH, TITLE_LENGTH


def iso(value: datetime) -> str:
    """Render a timestamp as ISO 8601 in UTC, always with microseconds."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")


post_tags = sa.Table(
    "blog_post_tags",
    db.metadata,
    sa.Column(
        "blog_id",
        sa.ForeignKey("blog_posts.id", name="fk_blog_post_tags_blog_id", ondelete="CASCADE"),
    ),
    sa.Column(
        "tag_id",
        sa.ForeignKey("blog_tags.id", name="fk_blog_post_tags_tag_id", ondelete="CASCADE"),
    ),
    sa.PrimaryKeyConstraint("blog_id", "tag_id", name="pk_blog_post_tags"),
    sa.Index("ix_blog_post_tags_tag_id", "tag_id"),
)


class User(db.Model):  # type: ignore[name-defined]
    """A blog author."""

    __tablename__ = "blog_users"
    __table_args__ = (
        sa.PrimaryKeyConstraint("id", name="pk_blog_users"),
        sa.UniqueConstraint("name", name="uq_blog_users_name"),
        sa.CheckConstraint(f"age >= 0 AND age <= {MAX_AGE}", name="ck_blog_users_age"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(NAME_LENGTH))
    age: Mapped[int | None] = mapped_column()

    # The database refuses to delete a user who has blogs; the service deletes them first.
    blogs: Mapped[list[Blog]] = relationship(back_populates="author", passive_deletes="all")

    def to_dict(self) -> dict[str, Any]:
        """Return the user as JSON."""
        return {"id": self.id, "name": self.name, "age": self.age}


class Tag(db.Model):  # type: ignore[name-defined]
    """A label that blogs share."""

    __tablename__ = "blog_tags"
    __table_args__ = (
        sa.PrimaryKeyConstraint("id", name="pk_blog_tags"),
        sa.UniqueConstraint("name", name="uq_blog_tags_name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(NAME_LENGTH))

    # Deleting a tag removes it from its blogs (the ORM deletes the association rows).
    blogs: Mapped[list[Blog]] = relationship(secondary=post_tags, back_populates="tags")

    def to_dict(self) -> dict[str, Any]:
        """Return the tag as JSON."""
        return {"id": self.id, "name": self.name}


class Blog(db.Model):  # type: ignore[name-defined]
    """A blog post by one user, with any number of tags."""

    __tablename__ = "blog_posts"
    __table_args__ = (sa.PrimaryKeyConstraint("id", name="pk_blog_posts"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(TITLE_LENGTH))
    content: Mapped[str] = mapped_column(
        sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
    )
    author_id: Mapped[int] = mapped_column(
        sa.ForeignKey("blog_users.id", name="fk_blog_posts_author_id"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    author: Mapped[User] = relationship(back_populates="blogs")
    tags: Mapped[list[Tag]] = relationship(
        secondary=post_tags, back_populates="blogs", order_by=Tag.name
    )

    def to_dict(self) -> dict[str, Any]:
        """Return the blog as JSON: the author inline, tags by name."""
        return {
            "id": self.id,
            "title": self.title,
            "content": self.content,
            "author_id": self.author_id,
            "author": self.author.to_dict(),
            "tags": [tag.name for tag in self.tags],
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }
